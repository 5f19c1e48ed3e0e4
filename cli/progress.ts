import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';

// cli-progress is loaded only for a bar that is drawn (on a terminal): piped
// and scripted runs, the most frequent, skip its start-up cost.
const require = createRequire(import.meta.url);

/** What a bar counts: file bytes (shown in MiB or GiB) or blocks. */
export type ProgressUnit = 'bytes' | 'blocks';

/**
 * Whether to draw progress bars on `stream`: only on a terminal, so piped
 * and CI output stays clean, and not on one that cannot move the cursor.
 */
export function showProgress(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb';
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A byte count for people: "0.3 MiB", "812.0 MiB", "1.25 GiB". */
export function formatBytes(n: number): string {
  return n >= GiB ? `${(n / GiB).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`;
}

/** The counts part of a bar's line: "12.0/96.3 MiB | 4.1 MiB/s" or "120/449 blocks | 80 blocks/s". */
export function progressText(value: number, total: number, unit: ProgressUnit, seconds: number): string {
  const rate = seconds > 0 ? value / seconds : 0;
  if (unit === 'bytes') return `${formatBytes(value).replace(/ .*/, '')}/${formatBytes(total)} | ${formatBytes(rate)}/s`;
  return `${value}/${total} blocks | ${Math.round(rate)} blocks/s`;
}

/**
 * A progress bar with rate and ETA on stderr (see `showProgress`). A message
 * printed with `note` goes above the bar, which is then drawn again.
 */
export class Progress {
  private bar: CliProgress.SingleBar | null = null;
  private readonly enabled: boolean;
  private lib: typeof CliProgress | null = null;
  private started = 0;
  private current: { label: string; total: number; unit: ProgressUnit; value: number } | null = null;

  constructor(enabled = showProgress(process.stderr)) {
    this.enabled = enabled;
  }

  start(label: string, total: number, unit: ProgressUnit): void {
    this.stop();
    this.current = { label, total, unit, value: 0 };
    this.started = Date.now();
    this.draw();
  }

  update(value: number): void {
    if (this.current === null) return;
    this.current.value = value;
    this.bar?.update(value, { counts: this.counts() });
  }

  /** Prints a line to stderr above the bar. */
  note(line: string): void {
    const was = this.current;
    this.bar?.stop();
    this.bar = null;
    process.stderr.write(`${line}\n`);
    if (was !== null) this.draw();
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
    this.current = null;
  }

  private counts(): string {
    const c = this.current!;
    return progressText(c.value, c.total, c.unit, (Date.now() - this.started) / 1000);
  }

  private draw(): void {
    if (!this.enabled || this.current === null) return;
    const { label, total, value } = this.current;
    const cliProgress = this.lib ??= require('cli-progress') as typeof CliProgress;
    this.bar = new cliProgress.SingleBar({
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {counts} | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 5,
    }, cliProgress.Presets.shades_classic);
    this.bar.start(total, value, { counts: this.counts() });
  }
}
