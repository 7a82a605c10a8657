/** The client id rule and the bound on logged client text (pure functions). */
import { describe, expect, it } from 'vitest';
import { clientIdBelongsTo, clip, isDeviceIdText, LOGGED_TEXT_CHARS } from './client-text.js';

describe('client id rule', () => {
  it('binds a client id to exactly one device: <id> or <id>:<suffix>', () => {
    expect(clientIdBelongsTo('MTR-1', 'MTR-1')).toBe(true);
    expect(clientIdBelongsTo('MTR-1:a', 'MTR-1')).toBe(true);
    expect(clientIdBelongsTo('MTR-1:a:b.c_d-e', 'MTR-1')).toBe(true);
    // ids may contain '-', '.', '_' but never ':', so no device can name another device's session
    for (const [clientId, deviceId] of [['MTR-1', 'MTR'], ['MTR-1:a', 'MTR'], ['MTR-1-a', 'MTR-1'], ['MTR-1.a', 'MTR-1'], ['MTR-1:', 'MTR-1'], ['x-MTR-1', 'MTR-1'], ['MTR-1:a\u0000', 'MTR-1'], ['MTR-1:' + 'a'.repeat(65), 'MTR-1'], ['', 'MTR-1']]) {
      expect([clientId, clientIdBelongsTo(clientId, deviceId)]).toEqual([clientId, false]);
    }
    expect(clientIdBelongsTo('aedes_0123', 'MTR-1', true)).toBe(true); // the broker assigned it for an empty client id
  });

  it('takes only device ids as usernames', () => {
    expect(isDeviceIdText('NULL')).toBe(true);
    for (const u of [undefined, '', 'MTR\u0000', 'a'.repeat(65), 'MTR 1', 'MTR\uFFFD']) expect(isDeviceIdText(u)).toBe(false);
  });
});

describe('clip', () => {
  it('keeps short text, escapes control characters, and bounds long text with a marker', () => {
    expect(clip('MTR-1')).toBe('MTR-1');
    expect(clip('a\u0000b\nc')).toBe('a\\u0000b\\u000ac');
    const long = clip('x'.repeat(10_000))!;
    expect(long.startsWith('x'.repeat(LOGGED_TEXT_CHARS) + '...')).toBe(true);
    expect(long).toContain(`[${10_000 - LOGGED_TEXT_CHARS} more chars]`);
    expect(long.length).toBeLessThan(LOGGED_TEXT_CHARS + 40);
    expect(clip(undefined)).toBeUndefined();
  });
});
