import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout. Secrets never reach a log line: the redaction list covers every place they travel. */
export function createLogger(level: string, name?: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    name,
    redact: {
      paths: ['password', 'mqttPassword', 'token', 'secret', 'req.headers.authorization', '*.password', '*.mqttPassword', '*.token'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
