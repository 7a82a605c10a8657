/**
 * The acknowledgement window on its own: PUBACKs in arrival order after commit, mqtt.js held while the
 * window is full, nothing written for a connection that is gone; and against the real mqtt.js client,
 * that the internal it relies on is there.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { installAckWindow } from './ack-window.js';

/** A client whose packet writer records what it writes, as mqtt.js's `_sendPacket` would write it. */
function recordingClient() {
  const written: { cmd: string; messageId?: number }[] = [];
  const client = {
    connected: true,
    _sendPacket(packet: { cmd: string; messageId?: number }, cb?: () => void) {
      written.push(packet);
      cb?.();
    },
  };
  /** what mqtt.js does for an arriving QoS 1 message once it is handed over: writes its PUBACK, then reads on */
  const mqttJsAcknowledges = (messageId: number) => {
    let readOn = false;
    (client as unknown as { _sendPacket: (p: object, cb: () => void) => void })._sendPacket({ cmd: 'puback', messageId }, () => (readOn = true));
    return readOn;
  };
  return { client, written, mqttJsAcknowledges, asMqtt: client as unknown as MqttClient };
}

describe('ack window', () => {
  it('writes PUBACKs in arrival order, each after its commit, whatever order the commits finish in', () => {
    const { written, mqttJsAcknowledges, asMqtt } = recordingClient();
    const acknowledged: number[] = [];
    const window = installAckWindow<string>(asMqtt, { maxInflight: 10, onAcknowledge: (e) => acknowledged.push(e.messageId) });
    const entries = [1, 2, 3].map((id) => {
      const entry = window.open(id);
      expect(mqttJsAcknowledges(id)).toBe(true); // room in the window: mqtt.js reads on at once
      return entry;
    });
    expect(written).toEqual([]); // mqtt.js's own PUBACKs are dropped
    expect(window.complete(entries[2], 'stored')).toBe(true);
    expect(window.complete(entries[1], 'stored')).toBe(true);
    expect(written).toEqual([]); // 1 is not committed: 2 and 3 wait behind it
    window.complete(entries[0], 'stored');
    expect(written).toEqual([1, 2, 3].map((messageId) => ({ cmd: 'puback', messageId, reasonCode: 0 })));
    expect(acknowledged).toEqual([1, 2, 3]);
    expect(window.size).toBe(0);
  });

  it('holds mqtt.js (reads no further packet) while the window is full, and lets it read on when a PUBACK leaves', () => {
    const { mqttJsAcknowledges, asMqtt } = recordingClient();
    const window = installAckWindow<string>(asMqtt, { maxInflight: 2 });
    const first = window.open(1);
    expect(mqttJsAcknowledges(1)).toBe(true);
    window.open(2);
    let readOn = false;
    (asMqtt as unknown as { _sendPacket: (p: object, cb: () => void) => void })._sendPacket({ cmd: 'puback', messageId: 2 }, () => (readOn = true));
    expect(readOn).toBe(false);
    window.complete(first, 'stored');
    expect(readOn).toBe(true);
  });

  it('acknowledges nothing of a connection that closed, and starts the next one empty', () => {
    const { written, mqttJsAcknowledges, asMqtt } = recordingClient();
    const window = installAckWindow<string>(asMqtt, { maxInflight: 5 });
    const old = window.open(7);
    mqttJsAcknowledges(7);
    window.connectionClosed();
    expect(window.size).toBe(0);
    expect(window.complete(old, 'stored')).toBe(false);
    const fresh = window.open(7); // the broker delivers it again, same packet id
    expect(window.complete(fresh, 'duplicate')).toBe(true);
    expect(written).toEqual([{ cmd: 'puback', messageId: 7, reasonCode: 0 }]);
  });

  it('writes no PUBACK while disconnected (mqtt.js would keep it for the next connection)', () => {
    const { client, written, asMqtt } = recordingClient();
    const window = installAckWindow<string>(asMqtt, { maxInflight: 5 });
    const entry = window.open(3);
    client.connected = false;
    window.complete(entry, 'stored');
    expect(written).toEqual([]);
  });

  it('passes every other packet through to mqtt.js untouched', () => {
    const { written, asMqtt } = recordingClient();
    installAckWindow<string>(asMqtt, { maxInflight: 1 });
    let called = false;
    (asMqtt as unknown as { _sendPacket: (p: object, cb: () => void) => void })._sendPacket({ cmd: 'subscribe', messageId: 9 }, () => (called = true));
    expect(written).toEqual([{ cmd: 'subscribe', messageId: 9 }]);
    expect(called).toBe(true);
  });

  it('finds the mqtt.js internal it relies on in the installed mqtt.js, and refuses a client without it', () => {
    // manualConnect: the client is built as the gateway builds it and never opens a socket
    const client = mqtt.connect('mqtt://127.0.0.1:1', { manualConnect: true });
    expect(() => installAckWindow(client, { maxInflight: 1 })).not.toThrow();
    expect(() => installAckWindow({} as MqttClient, { maxInflight: 1 })).toThrow(/_sendPacket is missing/);
  });
});
