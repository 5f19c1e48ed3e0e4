import { hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Subscriber, type Event as SocketEvent } from 'zeromq';

/**
 * The bitcoind ZMQ listener. A notification is only a hint that the chain may
 * have moved: the follower reacts to every wake the same way, by comparing the
 * node's best chain (over RPC) with the stored tip. So this module never tries
 * to interpret block contents; its job is to notice as quickly as possible
 * that *something* happened, including the things ZMQ hides from us: dropped
 * messages (a sequence gap), a publisher restart (the sequence back at 0), and
 * a reconnected transport.
 */

/** The block topics bitcoind can publish that this listener understands. */
export type ZmqTopic = 'sequence' | 'hashblock' | 'rawblock';

const TOPICS: ReadonlySet<string> = new Set<ZmqTopic>(['sequence', 'hashblock', 'rawblock']);

/**
 * Why the listener woke the follower. Every reason means "resync now";
 * `gap`, `restart` and `reconnect` say that notifications may have been lost.
 */
export interface ZmqWake {
  reason: 'block' | 'gap' | 'restart' | 'reconnect';
  /** The message's topic; empty for `reconnect`, which concerns the socket. */
  topic: string;
  /** Block hash in RPC display order, when the message named one. */
  hash?: string;
  detail?: string;
}

/** Why a message was rejected as garbage. */
export type ZmqGarbageReason = 'part-count' | 'seq-size' | 'unknown-topic' | 'body-size' | 'bad-label';

export interface ZmqGarbage {
  reason: ZmqGarbageReason;
  /** Number of frames in the rejected message. */
  parts: number;
  /** The topic frame, when there was one (may be non-printable). */
  topic?: string;
}

export type ZmqLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type ZmqLog = (level: ZmqLogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface ZmqListenerOptions {
  /** A libzmq endpoint, such as `tcp://127.0.0.1:28332`. */
  endpoint: string;
  /** Defaults to `['sequence']`, the only topic that also reports disconnects. */
  topics?: ZmqTopic[];
  log?: ZmqLog;
  /** Pause before rebuilding the socket after an unexpected receive error. */
  reconnectDelayMs?: number;
  /**
   * Largest frame accepted, in bytes; default {@link DEFAULT_MAX_MESSAGE_BYTES}.
   * libzmq drops the connection of a publisher that sends a larger one before
   * buffering it; the listener then reconnects and the follower resyncs.
   */
  maxMessageBytes?: number;
}

/** 64 MiB: room for a `rawblock` of the largest block of any big-block fork. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface ZmqCounters {
  /** Every multipart message received, garbage included. */
  messages: number;
  /** Block notifications (sequence C/D, hashblock, rawblock). */
  blocks: number;
  /** Mempool notifications (sequence A/R), which are ignored. */
  mempool: number;
  garbage: number;
  gaps: number;
  restarts: number;
  /** Transport reconnections and socket rebuilds. */
  reconnects: number;
}

type ListenerEvents = {
  wake: [ZmqWake];
  garbage: [ZmqGarbage];
};

/** Sequence-topic body: hash, label, and for mempool labels an 8-byte mempool sequence. */
const SEQUENCE_BLOCK_SIZE = 33;
const SEQUENCE_MEMPOOL_SIZE = 41;
const HEADER_SIZE = 80;

const noLog: ZmqLog = () => {};
/** How long a disconnect may go without libzmq's `connect:retry` before the socket counts as dropped. */
const DROP_CHECK_MS = 1000;

/**
 * Subscribes to a bitcoind ZMQ publisher and emits `wake` whenever the
 * follower should look at the node again, and `garbage` for messages that do
 * not follow bitcoind's wire format (counted, logged, then skipped: a bad
 * frame from the network must never stop the indexer).
 *
 * bitcoind sends `[topic, body, seq]` where `seq` is a u32le counter per topic
 * that starts at 0 with the publisher. A counter that does not advance by one
 * means messages were dropped (a high-water mark overflow, a lost connection)
 * and the follower must resync instead of trusting what it has seen.
 */
export class ZmqListener extends EventEmitter<ListenerEvents> {
  readonly endpoint: string;
  readonly topics: readonly ZmqTopic[];
  private readonly log: ZmqLog;
  private readonly reconnectDelayMs: number;
  private readonly maxMessageBytes: number;

  private socket: Subscriber | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  /** One observer loop per socket ever opened in this run; each ends when its socket closes. */
  private readonly watchers = new Set<Promise<void>>();
  private delay: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private dropCheck: NodeJS.Timeout | undefined;
  /** A socket closed on purpose after libzmq dropped its connection. */
  private dropped: Subscriber | undefined;
  /** A connection dropped; the next successful handshake is a reconnect. */
  private disconnected = false;
  private readonly lastSeq = new Map<string, number>();
  private lastAt = 0;
  private readonly count: ZmqCounters = { messages: 0, blocks: 0, mempool: 0, garbage: 0, gaps: 0, restarts: 0, reconnects: 0 };

  constructor(opts: ZmqListenerOptions) {
    super();
    this.endpoint = opts.endpoint;
    this.topics = opts.topics && opts.topics.length > 0 ? [...new Set(opts.topics)] : ['sequence'];
    this.log = opts.log ?? noLog;
    this.reconnectDelayMs = opts.reconnectDelayMs ?? 1000;
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /**
   * Time of the last well-formed message (ms since the epoch), 0 if none.
   * Garbage does not count: a stream of it is as useless as silence, and the
   * follower polls RPC when ZMQ has been silent for too long.
   */
  get lastMessageAt(): number {
    return this.lastAt;
  }

  get counters(): Readonly<ZmqCounters> {
    return { ...this.count };
  }

  /**
   * Connects and starts receiving in the background. Resolves once the socket
   * is connecting (ZMQ connects lazily, so the publisher need not be up yet);
   * rejects only for an endpoint libzmq cannot parse.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.disconnected = false;
    this.socket = this.open();
    this.running = true;
    this.loop = this.run();
  }

  /** Closes the socket and waits for the receive loop to finish. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.dropCheck);
    this.socket?.close();
    this.socket = undefined;
    if (this.delay) {
      clearTimeout(this.delay.timer);
      this.delay.resolve();
    }
    await this.loop;
    await Promise.all(this.watchers);
    this.loop = undefined;
  }

  private open(): Subscriber {
    // linger 0: a subscriber never has anything worth delivering at close,
    // and a lingering socket would keep the process (and Jest) alive.
    const socket = new Subscriber({ linger: 0, tcpKeepalive: 1, maxMessageSize: this.maxMessageBytes });
    // The monitor must exist before connect(), or the first events are lost.
    const watcher: Promise<void> = this.watch(socket).finally(() => this.watchers.delete(watcher));
    this.watchers.add(watcher);
    try {
      socket.connect(this.endpoint);
    } catch (err) {
      socket.close();
      throw new Error(`cannot connect to ZMQ endpoint ${JSON.stringify(this.endpoint)}: ${message(err)} (expected e.g. tcp://127.0.0.1:28332)`);
    }
    socket.subscribe(...this.topics);
    return socket;
  }

  /**
   * Reads the socket's monitor events until the socket closes. This uses
   * `events.receive()` rather than `events.on()`: zeromq installs the
   * emitter on the prototype of its native Observer class, which is shared
   * by every copy of the JS wrapper in the process, so under Jest (one module
   * registry per test file, one native addon per worker) `on()` calls the
   * `require` of a torn-down test file.
   */
  private async watch(socket: Subscriber): Promise<void> {
    const events = socket.events;
    while (!events.closed) {
      let ev: SocketEvent;
      try {
        ev = await events.receive();
      } catch {
        break; // closing the socket rejects the pending receive
      }
      this.guard(() => this.onSocketEvent(ev, socket));
    }
  }

  private onSocketEvent(ev: SocketEvent, socket: Subscriber): void {
    switch (ev.type) {
      case 'handshake':
        return this.onHandshake(ev.address);
      case 'connect:retry':
        clearTimeout(this.dropCheck);
        return;
      case 'disconnect':
        this.disconnected = true;
        this.log('warn', 'zmq publisher disconnected', { address: ev.address });
        this.watchForDrop(socket);
        return;
      case 'handshake:error:protocol':
      case 'handshake:error:auth':
      case 'handshake:error:other':
        return this.log('warn', 'zmq handshake failed', { address: ev.address, error: ev.error.message });
      default:
        return;
    }
  }

  /**
   * A handshake after a disconnect means the transport came back: anything
   * published meanwhile is lost, and a restarted publisher whose counter
   * happens to line up with ours would otherwise go unnoticed.
   */
  private onHandshake(address: string): void {
    if (!this.disconnected) {
      this.log('info', 'zmq connected', { address });
      return;
    }
    this.disconnected = false;
    this.count.reconnects++;
    this.log('info', 'zmq reconnected', { address });
    this.emit('wake', { reason: 'reconnect', topic: '', detail: `reconnected to ${address}` });
  }

  private async run(): Promise<void> {
    while (this.running) {
      const socket = this.socket;
      if (!socket) break;
      let parts: Buffer[];
      try {
        parts = await socket.receive();
      } catch (err) {
        if (!this.running) break;
        if (this.dropped !== socket) this.log('error', 'zmq receive failed; rebuilding the socket', { error: message(err), delayMs: this.reconnectDelayMs });
        await this.rebuild(socket);
        continue;
      }
      this.guard(() => this.handle(parts));
    }
  }

  /**
   * libzmq reconnects after a lost connection (it reports `connect:retry` at
   * once) but not after a protocol error, such as a frame over
   * maxMessageSize: then the connection is dropped for good. A disconnect
   * with no retry soon after is that case, and the socket is rebuilt.
   */
  private watchForDrop(socket: Subscriber): void {
    clearTimeout(this.dropCheck);
    this.dropCheck = setTimeout(() => {
      if (!this.running || this.socket !== socket) return;
      this.log('warn', 'zmq publisher dropped for a protocol error (a frame over the size limit?); rebuilding the socket', { maxMessageBytes: this.maxMessageBytes });
      this.dropped = socket;
      // The pending receive rejects; the receive loop rebuilds.
      socket.close();
    }, DROP_CHECK_MS);
  }

  /** Replaces a failed socket after a pause that stop() can cut short. */
  private async rebuild(failed: Subscriber): Promise<void> {
    failed.close();
    await new Promise<void>((resolve) => {
      this.delay = { timer: setTimeout(resolve, this.reconnectDelayMs), resolve };
    });
    this.delay = undefined;
    if (!this.running) return;
    try {
      this.disconnected = false;
      this.socket = this.open();
      this.count.reconnects++;
      const why = this.dropped === failed ? 'the connection was dropped for a protocol error' : 'a receive error';
      this.guard(() => this.emit('wake', { reason: 'reconnect', topic: '', detail: `socket rebuilt after ${why}` }));
    } catch (err) {
      this.log('error', 'zmq socket rebuild failed', { error: message(err) });
    }
  }

  /** Runs listener-facing code so that a throwing listener never ends the loop. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log('error', 'zmq listener callback threw', { error: message(err) });
    }
  }

  private handle(parts: Buffer[]): void {
    this.count.messages++;
    if (parts.length !== 3) return this.garbage('part-count', parts);
    const [topicBuf, body, seqBuf] = parts as [Buffer, Buffer, Buffer];
    const topic = topicBuf.toString('latin1');
    if (!TOPICS.has(topic)) return this.garbage('unknown-topic', parts, topic);
    if (seqBuf.length !== 4) return this.garbage('seq-size', parts, topic);

    // The envelope is valid, so the publisher counted this message: track its
    // sequence even if the body turns out to be garbage.
    const seq = seqBuf.readUInt32LE(0);
    const resync = this.track(topic, seq);

    const parsed = parseBody(topic as ZmqTopic, body);
    if (typeof parsed === 'string') {
      if (resync) this.emit('wake', resync);
      return this.garbage(parsed, parts, topic);
    }
    this.lastAt = Date.now();
    if (parsed.kind === 'mempool') {
      this.count.mempool++;
      if (resync) this.emit('wake', resync);
      return;
    }
    this.count.blocks++;
    this.log('debug', 'zmq block notification', { topic, seq, hash: parsed.hash, label: parsed.label });
    this.emit('wake', resync ? { ...resync, hash: parsed.hash } : { reason: 'block', topic, hash: parsed.hash });
  }

  /**
   * Updates the topic's counter and returns a wake if it did not advance by
   * one. Only a return to exactly 0 is called a restart; any other jump,
   * backwards included, is a gap. Both mean a full resync. The first message
   * of a topic just sets the baseline.
   */
  private track(topic: string, seq: number): ZmqWake | undefined {
    const last = this.lastSeq.get(topic);
    this.lastSeq.set(topic, seq);
    if (last === undefined) return undefined;
    const expected = (last + 1) >>> 0;
    if (seq === expected) return undefined;
    const detail = `seq ${seq} after ${last}`;
    if (seq === 0) {
      this.count.restarts++;
      this.log('warn', 'zmq publisher restarted', { topic, last });
      return { reason: 'restart', topic, detail };
    }
    this.count.gaps++;
    this.log('warn', 'zmq sequence gap', { topic, expected, got: seq });
    return { reason: 'gap', topic, detail };
  }

  private garbage(reason: ZmqGarbageReason, parts: Buffer[], topic?: string): void {
    this.count.garbage++;
    const info: ZmqGarbage = topic === undefined ? { reason, parts: parts.length } : { reason, parts: parts.length, topic };
    this.log('warn', 'zmq garbage message', { ...info, sizes: parts.map((p) => p.length) });
    this.emit('garbage', info);
  }
}

type ParsedBody = { kind: 'block'; hash: string; label?: 'C' | 'D' } | { kind: 'mempool' };

/** Checks a body against its topic's layout; a string is the garbage reason. */
function parseBody(topic: ZmqTopic, body: Buffer): ParsedBody | ZmqGarbageReason {
  switch (topic) {
    case 'hashblock':
      return body.length === 32 ? { kind: 'block', hash: body.toString('hex') } : 'body-size';
    case 'rawblock':
      // The hash is not in the message; a rawblock is only as useful as its header.
      return body.length >= HEADER_SIZE ? { kind: 'block', hash: blockHash(body) } : 'body-size';
    case 'sequence': {
      if (body.length !== SEQUENCE_BLOCK_SIZE && body.length !== SEQUENCE_MEMPOOL_SIZE) return 'body-size';
      const label = String.fromCharCode(body[32]!);
      if (label === 'C' || label === 'D') {
        return body.length === SEQUENCE_BLOCK_SIZE ? { kind: 'block', hash: body.subarray(0, 32).toString('hex'), label } : 'body-size';
      }
      if (label === 'A' || label === 'R') return body.length === SEQUENCE_MEMPOOL_SIZE ? { kind: 'mempool' } : 'body-size';
      return 'bad-label';
    }
  }
}

/** Double SHA-256 of the 80-byte header, reversed into RPC display order. */
function blockHash(block: Buffer): string {
  const once = hash('sha256', block.subarray(0, HEADER_SIZE), 'buffer');
  return hash('sha256', once, 'buffer').reverse().toString('hex');
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
