import cliProgress from 'cli-progress';

/**
 * A progress bar with rate and ETA on stderr, shown only when stderr is a
 * terminal, so piped and CI output stays clean.
 */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly enabled: boolean;
  private started = 0;

  constructor(enabled = process.stderr.isTTY === true) {
    this.enabled = enabled;
  }

  start(label: string, total: number, unit: string): void {
    this.stop();
    if (!this.enabled) return;
    this.started = Date.now();
    this.bar = new cliProgress.SingleBar({
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 5,
    }, cliProgress.Presets.shades_classic);
    this.bar.start(total, 0, { rate: '0' });
  }

  update(value: number): void {
    if (!this.bar) return;
    const secs = (Date.now() - this.started) / 1000;
    this.bar.update(value, { rate: secs > 0 ? Math.round(value / secs).toString() : '0' });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
