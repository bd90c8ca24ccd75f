import { pino } from 'pino';

// Cloud Logging reads `severity` and `message` from one JSON object per line on stdout.
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export const log = pino(
  {
    level: process.env.LOG_LEVEL ?? 'info',
    messageKey: 'message',
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
  },
  // Plain stdout keeps the order with other output and lets tests read what was logged.
  process.stdout,
);
