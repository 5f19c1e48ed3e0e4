/** Log levels, in their own module so that a command's option list can name them without loading pino. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_LEVELS = Object.keys(LEVEL_RANK) as LogLevel[];
