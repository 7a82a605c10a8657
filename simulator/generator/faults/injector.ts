/**
 * Fault injection as a pure, deterministic layer between the generator and the transport.
 *
 * Readings go in (`push`), in the order a device collects them; items to send come out (`take`): the
 * readings themselves, resends, corrupted variants, conflicting variants. Whether a given reading is
 * dropped, corrupted, delayed, duplicated or contradicted is a keyed draw on (seed, meterId, intervalStart),
 * so it does not depend on the fleet's size, its concentrators or the range being generated. Where delayed
 * items land depends on the stream they are pushed into.
 *
 * The transport reports acknowledgements back (`acknowledged`): a conflicting variant is released only
 * after its original has been acknowledged, so the original is the value the gateway keeps.
 */
import type { Reading } from '../../../common/reading.js';
import { drawUnit, hashText } from '../prng.js';
import {
  conflictingVariant,
  corruptReading,
  EXPECTED_REASON,
  INVALID_KINDS,
  type ExpectedReason,
  type InvalidKind,
} from './corruptions.js';
import { hasFaults, type FaultSpec } from './spec.js';
import { readingJson } from '../wire.js';

export type ItemKind = 'reading' | 'duplicate' | 'conflict' | 'invalid';

/** One thing to send: a JSON value for a message, or (invalid_json) a whole payload. */
export interface OutgoingItem {
  kind: ItemKind;
  meterId: string;
  /** Interval start of the reading this item derives from, epoch ms. */
  intervalStart: number;
  /** The valid reading a `reading` or `duplicate` item delivers (what a ledger counts); null otherwise. */
  reading: Reading | null;
  /** JSON text of the value to put in a message's readings (with `meterId`); null for `invalid_json`. */
  json: string | null;
  /** The whole payload of an `invalid_json` item, which is sent as a message of its own; null otherwise. */
  rawPayload: string | null;
  invalidKind: InvalidKind | null;
  /** The quarantine reason the gateway must give this item; null for valid readings and duplicates. */
  expectedReason: ExpectedReason | 'conflicting_duplicate' | null;
  /** How the delivery of this item was disturbed. */
  delay: 'none' | 'reordered' | 'late';
}

/** What the injector did, per generated reading. */
export interface FaultCounts {
  /** Readings pushed in. */
  readings: number;
  /** Readings sent as themselves (not dropped, not corrupted). */
  delivered: number;
  gap: number;
  invalid: number;
  duplicate: number;
  reorder: number;
  late: number;
  conflict: number;
}

/** A reordered reading is overtaken by 1 to this many later readings of the same meter. */
export const MAX_REORDER_DISTANCE = 4;
/** A duplicate is resent 0 to this many readings of the same meter after its original. */
export const MAX_DUPLICATE_DISTANCE = 3;
/** A late reading arrives once its meter's stream is 4 to this many intervals past it (or at the end). */
export const MAX_LATE_INTERVALS = 96;

const FATE_TAG = 61;
const DELAY_TAG = 62;
const DUPLICATE_TAG = 63;
const CONFLICT_TAG = 64;
const DETAIL_TAG = 65;

interface MeterState {
  key: number;
  /** Items released after a number of further readings of this meter (reordered readings, duplicates). */
  held: Array<{ item: OutgoingItem; remaining: number }>;
  /** Items released once this meter's stream reaches `releaseAt` (late readings). */
  late: Array<{ item: OutgoingItem; releaseAt: number }>;
}

export class FaultInjector {
  readonly counts: FaultCounts = emptyFaultCounts();
  private readonly meters = new Map<string, MeterState>();
  private readonly waitingForAck = new Map<string, OutgoingItem[]>();
  private ready: OutgoingItem[] = [];
  private readyHead = 0;
  private readonly active: boolean;

  constructor(
    private readonly spec: FaultSpec,
    private readonly seed: string,
  ) {
    this.active = hasFaults(spec);
  }

  /** Feeds the next reading the device collected. */
  push(reading: Reading): void {
    if (!this.active) {
      this.counts.readings++;
      this.counts.delivered++;
      this.emit(validItem('reading', reading));
      return;
    }
    const state = this.meterState(reading.meterId);
    const released = this.advance(state, reading.intervalStart);
    this.counts.readings++;
    const minute = Math.floor(reading.intervalStart / 60_000);
    const fate = drawUnit(state.key, FATE_TAG, minute);
    if (fate < this.spec.gap) {
      this.counts.gap++;
    } else if (fate < this.spec.gap + this.spec.invalid) {
      this.counts.invalid++;
      this.emit(this.invalidItem(reading, state.key, minute));
    } else {
      this.deliver(reading, state, minute);
    }
    for (const item of released) this.emit(item);
    this.releaseHeld(state);
  }

  /** Reports that the reading of (meterId, intervalStart) was acknowledged: releases its conflicting variant. */
  acknowledged(meterId: string, intervalStart: number): void {
    const key = `${meterId}|${intervalStart}`;
    const items = this.waitingForAck.get(key);
    if (!items) return;
    this.waitingForAck.delete(key);
    for (const item of items) this.emit(item);
  }

  /** The stream has ended: every delayed item is released, oldest interval first. */
  end(): void {
    const pending: OutgoingItem[] = [];
    for (const state of this.meters.values()) {
      pending.push(...state.held.map((h) => h.item), ...state.late.map((l) => l.item));
      state.held = [];
      state.late = [];
    }
    pending.sort((a, b) => a.intervalStart - b.intervalStart);
    for (const item of pending) this.emit(item);
  }

  /** The next item to send, or undefined when none is ready. */
  take(): OutgoingItem | undefined {
    if (this.readyHead >= this.ready.length) return undefined;
    const item = this.ready[this.readyHead++];
    if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.readyHead);
      this.readyHead = 0;
    }
    return item;
  }

  /** Items ready to send. */
  get readyCount(): number {
    return this.ready.length - this.readyHead;
  }

  /** Conflicting variants still waiting for their original's acknowledgement. */
  get conflictsWaiting(): number {
    let count = 0;
    for (const items of this.waitingForAck.values()) count += items.length;
    return count;
  }

  /** Items held back (reordered, late, duplicates not yet due), released by later pushes or `end`. */
  get heldCount(): number {
    let count = 0;
    for (const state of this.meters.values()) count += state.held.length + state.late.length;
    return count;
  }

  private deliver(reading: Reading, state: MeterState, minute: number): void {
    this.counts.delivered++;
    const original = validItem('reading', reading);
    const delay = drawUnit(state.key, DELAY_TAG, minute);
    if (delay < this.spec.late) {
      this.counts.late++;
      const intervals = 4 + Math.floor(drawUnit(state.key, DETAIL_TAG, minute, 1) * (MAX_LATE_INTERVALS - 3));
      original.delay = 'late';
      state.late.push({ item: original, releaseAt: reading.intervalStart + intervals * reading.intervalSeconds * 1000 });
    } else if (delay < this.spec.late + this.spec.reorder) {
      this.counts.reorder++;
      original.delay = 'reordered';
      const distance = 1 + Math.floor(drawUnit(state.key, DETAIL_TAG, minute, 2) * MAX_REORDER_DISTANCE);
      state.held.push({ item: original, remaining: distance });
    } else {
      this.emit(original);
    }
    if (drawUnit(state.key, DUPLICATE_TAG, minute) < this.spec.duplicate) {
      this.counts.duplicate++;
      const distance = Math.floor(drawUnit(state.key, DETAIL_TAG, minute, 3) * (MAX_DUPLICATE_DISTANCE + 1));
      state.held.push({ item: validItem('duplicate', reading), remaining: distance });
    }
    if (drawUnit(state.key, CONFLICT_TAG, minute) < this.spec.conflict) {
      this.counts.conflict++;
      const key = `${reading.meterId}|${reading.intervalStart}`;
      const conflict: OutgoingItem = {
        ...validItem('conflict', reading),
        reading: null,
        json: JSON.stringify(conflictingVariant(reading)),
        expectedReason: 'conflicting_duplicate',
      };
      this.waitingForAck.set(key, [...(this.waitingForAck.get(key) ?? []), conflict]);
    }
  }

  private invalidItem(reading: Reading, key: number, minute: number): OutgoingItem {
    const kinds = reading.intervalSeconds > 300 ? INVALID_KINDS : INVALID_KINDS.filter((k) => k !== 'interval_mismatch');
    const invalidKind = kinds[Math.floor(drawUnit(key, DETAIL_TAG, minute, 4) * kinds.length)];
    const corruption = corruptReading(reading, invalidKind);
    return {
      kind: 'invalid',
      meterId: reading.meterId,
      intervalStart: reading.intervalStart,
      reading: null,
      json: 'wire' in corruption ? JSON.stringify(corruption.wire) : null,
      rawPayload: 'rawPayload' in corruption ? corruption.rawPayload : null,
      invalidKind,
      expectedReason: EXPECTED_REASON[invalidKind],
      delay: 'none',
    };
  }

  /** One more reading of this meter: counts down held items, collects late items now due. */
  private advance(state: MeterState, intervalStart: number): OutgoingItem[] {
    for (const held of state.held) held.remaining--;
    const due = state.late.filter((l) => l.releaseAt <= intervalStart);
    if (due.length > 0) state.late = state.late.filter((l) => l.releaseAt > intervalStart);
    return due.map((l) => l.item);
  }

  private releaseHeld(state: MeterState): void {
    if (!state.held.some((h) => h.remaining <= 0)) return;
    for (const held of state.held) if (held.remaining <= 0) this.emit(held.item);
    state.held = state.held.filter((h) => h.remaining > 0);
  }

  private emit(item: OutgoingItem): void {
    this.ready.push(item);
  }

  private meterState(meterId: string): MeterState {
    let state = this.meters.get(meterId);
    if (!state) {
      state = { key: hashText(`${this.seed}\u0000faults\u0000${meterId}`), held: [], late: [] };
      this.meters.set(meterId, state);
    }
    return state;
  }
}

export function emptyFaultCounts(): FaultCounts {
  return { readings: 0, delivered: 0, gap: 0, invalid: 0, duplicate: 0, reorder: 0, late: 0, conflict: 0 };
}

function validItem(kind: 'reading' | 'duplicate' | 'conflict', reading: Reading): OutgoingItem {
  return {
    kind,
    meterId: reading.meterId,
    intervalStart: reading.intervalStart,
    reading,
    json: readingJson(reading),
    rawPayload: null,
    invalidKind: null,
    expectedReason: null,
    delay: 'none',
  };
}
