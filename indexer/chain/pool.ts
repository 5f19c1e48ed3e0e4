import { Worker } from 'node:worker_threads';

interface Job {
  req: object;
  resolve: (r: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * A few worker threads running one script (chainworker.js, sweepworker.js), each taking the next queued
 * request when it is free; every request gets exactly one reply. `broadcast`
 * sends a message with no reply to every worker, ahead of the requests
 * queued after it (a worker reads its messages in order).
 */
export class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly busy = new Map<Worker, Job>();
  private failure: unknown = null;

  constructor(url: URL, threads: number) {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(url);
      w.on('message', (m: unknown) => {
        const job = this.busy.get(w);
        this.busy.delete(w);
        this.idle.push(w);
        job?.resolve(m);
        this.dispatch();
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => {
        if (this.busy.has(w)) this.fail(new Error(`a chain-pass worker exited (code ${code}) in the middle of a request`));
      });
      this.all.push(w);
      this.idle.push(w);
    }
  }

  run<T>(req: object): Promise<T> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ req, resolve: resolve as (r: unknown) => void, reject });
      this.dispatch();
    });
  }

  broadcast(msg: object): void {
    for (const w of this.all) w.postMessage(msg);
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job);
      w.postMessage(job.req);
    }
  }

  private fail(err: unknown): void {
    this.failure ??= err;
    for (const job of [...this.busy.values(), ...this.queue]) job.reject(this.failure);
    this.busy.clear();
    this.queue.length = 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}
