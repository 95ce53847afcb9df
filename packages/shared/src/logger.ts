import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Secrets never reach a log: these paths are censored wherever they appear at the top level or one level down
 * (pino's redact wildcards match a single level). Never log a whole config or request object below that.
 */
export const REDACTED_PATHS = [
  'FAL_KEY',
  'API_KEYS',
  'ADMIN_KEY',
  'key',
  'apiKey',
  'adminKey',
  'apiKeys',
  'credentials',
  'authorization',
  'password',
  'headers.authorization',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.FAL_KEY',
  '*.key',
  '*.apiKey',
  '*.adminKey',
  '*.apiKeys',
  '*.credentials',
  '*.authorization',
  '*.password',
];

export function createLogger(service: string, level = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      name: service,
      level,
      base: { service },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
export type { Logger };
