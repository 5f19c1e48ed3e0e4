/**
 * Structured one-line logs with levels. Text lines for people
 * (`2026-11-21T09:00:00.000Z info  connected block height=5 …`), or one JSON
 * object per line with `--log-json` for machines. Logs go to stderr so that
 * stdout stays for command output.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;
export type LogFn = (level: LogLevel, msg: string, fields?: LogFields) => void;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_LEVELS = Object.keys(RANK) as LogLevel[];

function fieldText(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'bigint') return v.toString();
  return JSON.stringify(v) ?? 'undefined';
}

export interface LoggerOptions {
  level?: LogLevel;
  json?: boolean;
  write?: (line: string) => void;
}

/** Makes a LogFn; messages below `level` are dropped before any formatting. */
export function createLogger(opts: LoggerOptions = {}): LogFn {
  const min = RANK[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  return (level, msg, fields = {}) => {
    if (RANK[level] < min) return;
    const time = new Date().toISOString();
    if (opts.json) {
      write(JSON.stringify({ time, level, msg, ...fields }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
    } else {
      const extra = Object.entries(fields).map(([k, v]) => `${k}=${fieldText(v)}`).join(' ');
      write(`${time} ${level.padEnd(5)} ${msg}${extra ? ' ' + extra : ''}`);
    }
  };
}

/** A logger that drops everything (the default for embedders). */
export const silent: LogFn = () => undefined;
