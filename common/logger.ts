import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout. Secrets never reach a log line: the redaction list covers every place they travel. */
export function createLogger(level: string, name?: string): Logger {
  return pino({
    level,
    name,
    redact: {
      paths: ['password', 'mqttPassword', 'token', 'secret', 'req.headers.authorization', '*.password', '*.mqttPassword', '*.token'],
      censor: '[redacted]',
    },
  });
}
