import { pino, type DestinationStream } from 'pino';
import { LEVEL_RANK as RANK, LOG_LEVELS, type LogLevel } from './loglevel.js';
import { redact } from './redact.js';

/**
 * Structured one-line logs with levels, through pino. Text lines for people
 * (`2026-11-21T09:00:00.000Z info  connected block height=5 …`), or one JSON
 * object per line with `--log-json` for machines. Logs go to stderr so that
 * stdout stays for command output.
 *
 * Three guards sit between a caller and the output, because log text comes
 * from outside (a node's error, a ZMQ topic): secrets are masked
 * ({@link redact}), control characters are escaped in text lines, and a
 * warning or error repeated faster than a person can read is throttled to a
 * burst per interval plus one line with the count.
 */
export { LOG_LEVELS, type LogLevel };
export type LogFields = Record<string, unknown>;
export type LogFn = (level: LogLevel, msg: string, fields?: LogFields) => void;


export interface LoggerOptions {
  level?: LogLevel;
  json?: boolean;
  /** Receives each finished line without its newline; default: stderr. */
  write?: (line: string) => void;
  /** Length of a throttling window in ms; default 10 000. */
  throttleMs?: number;
  /** Lines of one kind written per window before the rest are only counted; default 10. */
  burst?: number;
}

/** C0 and C1 controls and DEL: a terminal acts on them (ESC starts a colour or cursor sequence). */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
const escapeControl = (s: string): string => s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function fieldText(v: unknown): string {
  if (typeof v === 'string') return /[\s"=\\\x00-\x1f\x7f-\x9f]/.test(v) ? escapeControl(JSON.stringify(v)) : v;
  return escapeControl(JSON.stringify(v) ?? 'undefined');
}

/** A pino JSON line as a text line. */
function textLine(json: string): string {
  const { time, level, msg, ...fields } = JSON.parse(json) as LogFields;
  const extra = Object.entries(fields).map(([k, v]) => `${escapeControl(k)}=${fieldText(v)}`).join(' ');
  return `${String(time)} ${String(level).padEnd(5)} ${escapeControl(String(msg))}${extra ? ' ' + extra : ''}`;
}

/** Field values as they may be written: secrets masked, bigints as decimal strings. */
function clean(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redact(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return redact(v.message);
  if (depth > 3 || typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => clean(x, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clean(x, depth + 1)]));
}

/**
 * Counts warnings and errors per kind (level and message): the first `burst`
 * of a window pass, the others are dropped and, when the window closes, one
 * line reports how many there were. A flood of 20 000 bad messages becomes a
 * few lines per window, and none of them goes unaccounted.
 */
class Throttle {
  private readonly windows = new Map<string, { written: number; dropped: number; last: LogFields; timer: NodeJS.Timeout }>();

  constructor(private readonly ms: number, private readonly burst: number, private readonly emit: (level: LogLevel, msg: string, fields: LogFields) => void) {}

  /** True when the line may be written now. */
  admit(level: LogLevel, msg: string, fields: LogFields): boolean {
    const key = `${level} ${msg}`;
    const w = this.windows.get(key);
    if (w === undefined) {
      const timer = setTimeout(() => this.close(key, level, msg), this.ms);
      timer.unref();
      this.windows.set(key, { written: 1, dropped: 0, last: fields, timer });
      return true;
    }
    if (w.written < this.burst) {
      w.written++;
      return true;
    }
    w.dropped++;
    w.last = fields;
    return false;
  }

  /** Ends every open window now, writing the counts (at shutdown). */
  flush(): void {
    for (const key of [...this.windows.keys()]) {
      const sep = key.indexOf(' ');
      this.close(key, key.slice(0, sep) as LogLevel, key.slice(sep + 1));
    }
  }

  private close(key: string, level: LogLevel, msg: string): void {
    const w = this.windows.get(key);
    if (w === undefined) return;
    clearTimeout(w.timer);
    this.windows.delete(key);
    if (w.dropped > 0) this.emit(level, msg, { ...w.last, repeated: w.dropped, repeatedWithinMs: this.ms });
  }
}

/** A LogFn that can also write the counts of throttled lines before the process ends. */
export type Logger = LogFn & { flush(): void };

/** Makes a LogFn; messages below `level` are dropped before any formatting. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  // A flag given twice reaches us as an array (yargs): the last one wins, as with bitcoind.
  const given: unknown = opts.level;
  const level: LogLevel = (Array.isArray(given) ? given.at(-1) : given) ?? 'info';
  if (!(level in RANK)) throw new RangeError(`unknown log level ${String(level)}`);
  const min = RANK[level];
  const write = opts.write;
  const json = opts.json === true;
  let stream: DestinationStream;
  if (write) {
    stream = { write: (line: string) => write(json ? line.replace(/\n$/, '') : textLine(line)) };
  } else if (json) {
    // Synchronous, so that the last lines before an exit are not lost.
    stream = pino.destination({ fd: 2, sync: true });
  } else {
    stream = { write: (line: string) => void process.stderr.write(textLine(line) + '\n') };
  }
  const logger = pino({
    level,
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, stream);
  const emit = (level: LogLevel, msg: string, fields: LogFields): void => {
    // The message first, then the fields, as the lines have always read.
    logger[level]({ msg: redact(msg), ...(clean(fields) as object) });
  };
  const throttle = new Throttle(opts.throttleMs ?? 10_000, opts.burst ?? 10, emit);
  const log: LogFn = (level, msg, fields = {}) => {
    if (RANK[level] < min) return;
    if (RANK[level] >= RANK.warn && !throttle.admit(level, msg, fields)) return;
    emit(level, msg, fields);
  };
  return Object.assign(log, { flush: () => throttle.flush() });
}

/** A logger that drops everything (the default for embedders). */
export const silent: LogFn = () => undefined;
