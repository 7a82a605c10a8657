/**
 * The TLS material of every listener (MQTT over TLS, secure WebSocket, HTTPS API): TLS_CERT_FILE and
 * TLS_KEY_FILE read once at start-up, so a bad file stops start-up with one clear line.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/** PEM certificate (chain) and private key, as read at start-up. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** The minimum protocol version of every TLS listener (MQTT, WebSocket, API). */
export const TLS_MIN_VERSION = 'TLSv1.2' as const;

/** A TLS file that cannot be read or used: one start-up line naming the variable. */
export class TlsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsFileError';
  }
}

/**
 * Reads TLS_CERT_FILE and TLS_KEY_FILE (null when neither is set; config.ts ensures both or neither) and
 * checks that they make a usable certificate and key, so a bad file stops start-up with one clear line.
 */
export function readTlsFiles(config: { TLS_CERT_FILE?: string; TLS_KEY_FILE?: string }): TlsMaterial | null {
  if (!config.TLS_CERT_FILE || !config.TLS_KEY_FILE) return null;
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new TlsFileError(`${variable}=${file}: cannot read the file (${e.code ?? e.message})`);
    }
  };
  const material = { cert: read('TLS_CERT_FILE', config.TLS_CERT_FILE), key: read('TLS_KEY_FILE', config.TLS_KEY_FILE) };
  try {
    createSecureContext({ ...material, minVersion: TLS_MIN_VERSION });
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    throw new TlsFileError(`TLS_CERT_FILE=${config.TLS_CERT_FILE}, TLS_KEY_FILE=${config.TLS_KEY_FILE}: not a usable PEM certificate and matching private key (${reason})`);
  }
  return material;
}

