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

// A bad LOG_LEVEL is reported with every other bad setting by shared/config.ts; pino would throw here.
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const level = process.env.LOG_LEVEL && LEVELS.includes(process.env.LOG_LEVEL) ? process.env.LOG_LEVEL : 'info';

export const log = pino(
  {
    level,
    messageKey: 'message',
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
  },
  // Plain stdout keeps the order with other output and lets tests read what was logged.
  process.stdout,
);
