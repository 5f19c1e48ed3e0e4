import { Publisher } from 'zeromq';

/**
 * A real ZMQ publisher that speaks bitcoind's wire format: multipart
 * `[topic, body, seq]` with a u32le counter per topic starting at 0. Tests
 * drive the counters directly to fake dropped messages and restarts.
 */
export class FakeBitcoindPublisher {
  private readonly seqs = new Map<string, number>();

  private constructor(
    private readonly socket: Publisher,
    /** The bound endpoint with the real port, e.g. tcp://127.0.0.1:41234. */
    readonly endpoint: string,
  ) {}

  /**
   * Binds to `endpoint`, by default a free loopback port. Binding the endpoint
   * of a closed publisher again simulates bitcoind coming back after a restart.
   */
  static async bind(endpoint = 'tcp://127.0.0.1:*'): Promise<FakeBitcoindPublisher> {
    const socket = new Publisher({ linger: 0 });
    await socket.bind(endpoint);
    const bound = socket.lastEndpoint;
    if (bound === null) throw new Error(`publisher bound to ${endpoint} but reports no endpoint`);
    return new FakeBitcoindPublisher(socket, bound);
  }

  /** The counter the next message on `topic` will carry. */
  peekSeq(topic: string): number {
    return this.seqs.get(topic) ?? 0;
  }

  /** Returns the next counter for `topic` as 4 bytes and advances it (for hand-built messages). */
  takeSeq(topic: string, seq?: number): Buffer {
    const n = seq ?? this.peekSeq(topic);
    this.seqs.set(topic, (n + 1) >>> 0);
    const buf = Buffer.alloc(4);
    buf.writeUInt32LE(n >>> 0);
    return buf;
  }

  /** Pretends `count` messages on `topic` were published and lost. */
  skip(topic: string, count: number): void {
    this.seqs.set(topic, (this.peekSeq(topic) + count) >>> 0);
  }

  /** Sets the next counter of `topic` (0 by default, as after a restart). */
  reset(topic: string, next = 0): void {
    this.seqs.set(topic, next >>> 0);
  }

  /** `sequence` block notification: hash (display order) then 'C' or 'D'. */
  async publishSequence(hashHex: string, label: 'C' | 'D', seq?: number): Promise<void> {
    const body = Buffer.concat([hashBytes(hashHex), Buffer.from(label, 'latin1')]);
    await this.send('sequence', body, seq);
  }

  /** `sequence` mempool notification: txid, 'A' or 'R', then the u64le mempool sequence. */
  async publishMempool(txidHex: string, label: 'A' | 'R', mempoolSeq = 0n, seq?: number): Promise<void> {
    const tail = Buffer.alloc(8);
    tail.writeBigUInt64LE(mempoolSeq);
    const body = Buffer.concat([hashBytes(txidHex), Buffer.from(label, 'latin1'), tail]);
    await this.send('sequence', body, seq);
  }

  async publishHashblock(hashHex: string, seq?: number): Promise<void> {
    await this.send('hashblock', hashBytes(hashHex), seq);
  }

  async publishRawblock(block: Buffer, seq?: number): Promise<void> {
    await this.send('rawblock', block, seq);
  }

  /** Sends frames exactly as given, touching no counter: for garbage. */
  async publishRaw(parts: Array<Buffer | string>): Promise<void> {
    await this.socket.send(parts);
  }

  close(): void {
    this.socket.close();
  }

  private async send(topic: string, body: Buffer, seq?: number): Promise<void> {
    await this.socket.send([topic, body, this.takeSeq(topic, seq)]);
  }
}

function hashBytes(hex: string): Buffer {
  const buf = Buffer.from(hex, 'hex');
  if (buf.length !== 32) throw new Error(`expected a 32-byte hash, got ${JSON.stringify(hex)}`);
  return buf;
}

/**
 * Works around ZMQ's slow joiner: a subscriber misses everything published
 * before its subscription reaches the publisher. Calls `probe` every
 * `intervalMs` until `received()` holds, so assertions start from a subscriber
 * that is known to be listening. `timeoutMs` only bounds a subscriber that
 * never listens: a loaded machine may take seconds.
 */
export async function probeUntil(received: () => boolean, probe: () => Promise<void>, timeoutMs = 30_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!received()) {
    if (Date.now() > deadline) throw new Error(`subscriber received no probe within ${timeoutMs} ms`);
    await probe();
    await sleep(intervalMs);
  }
}

/** Resolves once `cond()` holds, polling every few milliseconds; `timeoutMs` only catches a hang. */
export async function waitFor(cond: () => boolean, what: string | (() => string), timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
