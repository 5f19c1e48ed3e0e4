import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ZmqListener, type ZmqGarbage, type ZmqTopic, type ZmqWake } from '../indexer/node/zmq.js';
import { FakeBitcoindPublisher, probeUntil, sleep, waitFor } from './helpers/zmqpub.js';

const H1 = '11'.repeat(31) + '01';
const H2 = '22'.repeat(31) + '02';
const H3 = '33'.repeat(31) + '03';
const PROBE_TX = 'ee'.repeat(32);
const PROBE_BLOCK = 'ff'.repeat(32);

/** Regtest genesis header; its hash is well known, so rawblock hashing is checked independently. */
const REGTEST_GENESIS_HEADER =
  '01000000' + '00'.repeat(32) + '3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a' + 'dae5494d' + 'ffff7f20' + '02000000';
const REGTEST_GENESIS_HASH = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206';

interface Harness {
  pub: FakeBitcoindPublisher;
  listener: ZmqListener;
  /** Wakes after the subscriber was known to be listening, probe blocks left out. */
  wakes: ZmqWake[];
  garbage: ZmqGarbage[];
  logs: Array<{ level: string; msg: string }>;
}

let open: Harness | undefined;
const extraPublishers: FakeBitcoindPublisher[] = [];

afterEach(async () => {
  await open?.listener.stop();
  open?.pub.close();
  for (const pub of extraPublishers.splice(0)) pub.close();
  open = undefined;
});

/**
 * Starts a publisher and a listener, then probes until the listener is
 * provably subscribed (mempool messages on `sequence`, which never wake;
 * a marker block hash otherwise, filtered out of `wakes`).
 */
async function connect(topics?: ZmqTopic[], opts: { firstSeq?: number; reconnectDelayMs?: number; maxMessageBytes?: number } = {}): Promise<Harness> {
  const pub = await FakeBitcoindPublisher.bind();
  if (opts.firstSeq !== undefined) pub.reset('sequence', opts.firstSeq);
  const logs: Harness['logs'] = [];
  const listener = new ZmqListener({ endpoint: pub.endpoint, topics, log: (level, msg) => logs.push({ level, msg }), reconnectDelayMs: opts.reconnectDelayMs, maxMessageBytes: opts.maxMessageBytes });
  const h: Harness = { pub, listener, wakes: [], garbage: [], logs };
  open = h;
  h.listener.on('wake', (w) => {
    if (w.hash !== PROBE_BLOCK) h.wakes.push(w);
  });
  h.listener.on('garbage', (g) => h.garbage.push(g));
  await h.listener.start();
  const viaSequence = topics === undefined || topics.includes('sequence');
  await probeUntil(
    () => h.listener.lastMessageAt > 0,
    () => (viaSequence ? pub.publishMempool(PROBE_TX, 'A') : pub.publishHashblock(PROBE_BLOCK)),
  );
  return h;
}

async function settle(h: Harness, wakes: number): Promise<void> {
  await waitFor(() => h.wakes.length >= wakes, () => `${wakes} wake(s), got ${JSON.stringify(h.wakes)}`);
}

describe('ZmqListener', () => {
  test('block notifications on the sequence topic wake the follower in order with display-order hashes', async () => {
    const h = await connect();
    await h.pub.publishSequence(H1, 'C');
    await h.pub.publishSequence(H2, 'C');
    await h.pub.publishSequence(H2, 'D');
    await settle(h, 3);

    expect(h.wakes).toEqual([
      { reason: 'block', topic: 'sequence', hash: H1 },
      { reason: 'block', topic: 'sequence', hash: H2 },
      { reason: 'block', topic: 'sequence', hash: H2 },
    ]);
    expect(h.listener.counters).toMatchObject({ blocks: 3, gaps: 0, restarts: 0, garbage: 0 });
  });

  test('the first message of a topic sets the baseline wherever its counter starts', async () => {
    const h = await connect(undefined, { firstSeq: 4_000_000 });
    await h.pub.publishSequence(H1, 'C');
    await settle(h, 1);

    expect(h.wakes).toEqual([{ reason: 'block', topic: 'sequence', hash: H1 }]);
    expect(h.listener.counters).toMatchObject({ gaps: 0, restarts: 0 });
  });

  test('hashblock and rawblock notifications wake with the block hash', async () => {
    const h = await connect(['hashblock', 'rawblock']);
    await h.pub.publishHashblock(H3);
    await h.pub.publishRawblock(Buffer.from(REGTEST_GENESIS_HEADER + '00', 'hex'));
    await settle(h, 2);

    expect(h.wakes).toEqual([
      { reason: 'block', topic: 'hashblock', hash: H3 },
      { reason: 'block', topic: 'rawblock', hash: REGTEST_GENESIS_HASH },
    ]);
  });

  test('mempool notifications are counted but never wake the follower', async () => {
    const h = await connect();
    const before = h.listener.counters.mempool;
    await h.pub.publishMempool(H1, 'A', 7n);
    await h.pub.publishMempool(H1, 'R', 8n);
    await h.pub.publishSequence(H2, 'C');
    await settle(h, 1);

    expect(h.wakes).toEqual([{ reason: 'block', topic: 'sequence', hash: H2 }]);
    expect(h.listener.counters.mempool - before).toBe(2);
  });

  test('a jump in the sequence counter wakes with a gap, then delivery continues normally', async () => {
    const h = await connect();
    await h.pub.publishSequence(H1, 'C');
    h.pub.skip('sequence', 3);
    await h.pub.publishSequence(H2, 'C');
    await h.pub.publishSequence(H3, 'C');
    await settle(h, 3);

    expect(h.wakes.map((w) => [w.reason, w.hash])).toEqual([
      ['block', H1],
      ['gap', H2],
      ['block', H3],
    ]);
    expect(h.wakes[1]!.detail).toMatch(/^seq \d+ after \d+$/);
    expect(h.listener.counters.gaps).toBe(1);
  });

  test('a gap seen on a mempool message still wakes the follower', async () => {
    const h = await connect();
    h.pub.skip('sequence', 1);
    await h.pub.publishMempool(H1, 'A');
    await settle(h, 1);

    expect(h.wakes).toEqual([expect.objectContaining({ reason: 'gap', topic: 'sequence' })]);
    expect(h.wakes[0]!.hash).toBeUndefined();
  });

  test('a counter back at zero wakes with a restart', async () => {
    const h = await connect();
    await h.pub.publishSequence(H1, 'C');
    h.pub.reset('sequence');
    await h.pub.publishSequence(H2, 'C');
    await h.pub.publishSequence(H3, 'C');
    await settle(h, 3);

    expect(h.wakes.map((w) => [w.reason, w.hash])).toEqual([
      ['block', H1],
      ['restart', H2],
      ['block', H3],
    ]);
    expect(h.listener.counters).toMatchObject({ restarts: 1, gaps: 0 });
  });

  test('the counter wrapping from 2^32-1 to zero is neither a gap nor a restart', async () => {
    const h = await connect(undefined, { firstSeq: 0xffff_0000 });
    h.pub.reset('sequence', 0xffff_ffff);
    await h.pub.publishMempool(PROBE_TX, 'A');
    await settle(h, 1);
    await h.pub.publishSequence(H1, 'C');
    await settle(h, 2);

    expect(h.pub.peekSeq('sequence')).toBe(1);
    expect(h.wakes.map((w) => w.reason)).toEqual(['gap', 'block']);
    expect(h.listener.counters).toMatchObject({ gaps: 1, restarts: 0 });
  });

  test('malformed frames of every kind are reported as garbage and the listener keeps working', async () => {
    const h = await connect(['sequence', 'hashblock']);
    const seqBody = (label: string): Buffer => Buffer.concat([Buffer.from(H1, 'hex'), Buffer.from(label, 'latin1')]);
    const cases: Array<{ parts: Array<Buffer | string>; reason: ZmqGarbage['reason'] }> = [
      { parts: ['sequence'], reason: 'part-count' },
      { parts: ['sequence', seqBody('C'), Buffer.alloc(4), 'extra'], reason: 'part-count' },
      { parts: ['sequence', seqBody('C'), Buffer.from([1, 0, 0])], reason: 'seq-size' },
      { parts: ['sequencefoo', seqBody('C'), Buffer.alloc(4)], reason: 'unknown-topic' },
      { parts: ['hashblock', Buffer.alloc(31, 0xab), h.pub.takeSeq('hashblock')], reason: 'body-size' },
      { parts: ['sequence', seqBody('X'), h.pub.takeSeq('sequence')], reason: 'bad-label' },
      { parts: ['sequence', Buffer.from(H1, 'hex'), h.pub.takeSeq('sequence')], reason: 'body-size' },
      { parts: ['sequence', seqBody('A'), h.pub.takeSeq('sequence')], reason: 'body-size' },
    ];
    for (const c of cases) await h.pub.publishRaw(c.parts);
    await waitFor(() => h.garbage.length >= cases.length, `${cases.length} garbage reports`);

    expect(h.garbage.map((g) => g.reason)).toEqual(cases.map((c) => c.reason));
    expect(h.garbage[0]).toMatchObject({ parts: 1 });
    expect(h.garbage[1]).toMatchObject({ parts: 4 });
    expect(h.listener.counters.garbage).toBe(cases.length);
    expect(h.logs.filter((l) => l.level === 'warn' && /garbage/.test(l.msg))).toHaveLength(cases.length);

    await h.pub.publishSequence(H2, 'C');
    await h.pub.publishHashblock(H3);
    await settle(h, 2);
    // Garbage with a valid envelope consumed its counter, so nothing looks like a gap.
    expect(h.wakes).toEqual([
      { reason: 'block', topic: 'sequence', hash: H2 },
      { reason: 'block', topic: 'hashblock', hash: H3 },
    ]);
  });

  test('a publisher that goes away and comes back on the same port wakes the follower and keeps delivering', async () => {
    // Start the old publisher's counter high so the new one's cannot line up with it.
    const h = await connect(undefined, { firstSeq: 1000 });
    await h.pub.publishSequence(H1, 'C');
    await settle(h, 1);
    h.pub.close();
    await sleep(50);

    const pub2 = await FakeBitcoindPublisher.bind(h.pub.endpoint);
    extraPublishers.push(pub2);
    const seen = h.listener.counters.messages;
    await probeUntil(() => h.listener.counters.messages > seen, () => pub2.publishMempool(PROBE_TX, 'A'));
    await pub2.publishSequence(H2, 'C');
    await waitFor(() => h.wakes.some((w) => w.hash === H2), 'the block from the new publisher');
    // Socket events travel separately from messages, so this wake may come later.
    await waitFor(() => h.wakes.some((w) => w.reason === 'reconnect'), 'a reconnect wake');

    const reasons = h.wakes.map((w) => w.reason);
    expect(reasons.some((r) => r === 'restart' || r === 'gap')).toBe(true);
    expect(h.wakes.filter((w) => w.reason !== 'reconnect').at(-1)).toEqual({ reason: 'block', topic: 'sequence', hash: H2 });
  });

  test('a wake listener that throws is logged and does not stop delivery', async () => {
    const h = await connect();
    let thrown = 0;
    h.listener.on('wake', (w) => {
      if (w.hash === H1) {
        thrown++;
        throw new Error('listener bug');
      }
    });
    await h.pub.publishSequence(H1, 'C');
    await h.pub.publishSequence(H2, 'C');
    await waitFor(() => h.wakes.some((w) => w.hash === H2), 'the second block');

    expect(thrown).toBe(1);
    expect(h.logs).toContainEqual({ level: 'error', msg: 'zmq listener callback threw' });
  });

  test('a failed receive rebuilds the socket and wakes with reconnect', async () => {
    const h = await connect(undefined, { reconnectDelayMs: 20 });
    // Simulate the socket dying under the loop; there is no public way to break a live socket.
    (h.listener as unknown as { socket: { close(): void } }).socket.close();
    await waitFor(() => h.wakes.some((w) => w.reason === 'reconnect'), 'a reconnect wake');
    const seen = h.listener.counters.messages;
    await probeUntil(() => h.listener.counters.messages > seen, () => h.pub.publishMempool(PROBE_TX, 'A'));
    await h.pub.publishSequence(H1, 'C');
    await waitFor(() => h.wakes.some((w) => w.hash === H1), 'a block after the rebuild');

    expect(h.logs.some((l) => l.level === 'error' && /rebuilding/.test(l.msg))).toBe(true);
  });

  test('a frame over maxMessageBytes is never delivered: libzmq drops the publisher, the socket is rebuilt, and delivery resumes', async () => {
    const h = await connect(undefined, { reconnectDelayMs: 20, maxMessageBytes: 64 * 1024 });
    const seen = h.listener.counters.messages;
    await h.pub.publishRaw(['sequence', Buffer.alloc(1024 * 1024, 0x43), h.pub.takeSeq('sequence')]);
    await waitFor(() => h.wakes.some((w) => w.reason === 'reconnect'), 'a reconnect wake', 10_000);
    expect(h.logs.map((l) => l.msg)).toContain('zmq publisher dropped for a protocol error (a frame over the size limit?); rebuilding the socket');
    expect(h.logs.some((l) => l.level === 'error')).toBe(false);
    await probeUntil(() => h.listener.counters.messages > seen, () => h.pub.publishMempool(PROBE_TX, 'A'), 10_000);
    await h.pub.publishSequence(H1, 'C');
    await waitFor(() => h.wakes.some((w) => w.hash === H1), 'a block after the rebuild');
    // The oversized message never reached the listener: nothing but probes and the block were counted.
    expect(h.listener.counters.garbage).toBe(0);
  });

  test('start rejects an endpoint libzmq cannot parse with a message naming it', async () => {
    const listener = new ZmqListener({ endpoint: 'not an endpoint' });
    await expect(listener.start()).rejects.toThrow(/"not an endpoint".*tcp:\/\//);
    await listener.stop();
  });

  test('stop ends delivery and is idempotent', async () => {
    const pub = await FakeBitcoindPublisher.bind();
    extraPublishers.push(pub);
    const listener = new ZmqListener({ endpoint: pub.endpoint });
    const wakes: ZmqWake[] = [];
    listener.on('wake', (w) => wakes.push(w));
    await listener.start();
    await probeUntil(() => listener.lastMessageAt > 0, () => pub.publishMempool(PROBE_TX, 'A'));
    await listener.stop();
    await listener.stop();

    await pub.publishSequence(H1, 'C');
    await sleep(50);
    expect(wakes).toEqual([]);
  });

  test('a process that stops its listener exits on its own', () => {
    // Jest keeps its own timers alive, so a clean exit is only observable in a
    // process of our own. A pending receive on a socket that has received
    // before holds the event loop, so this hangs (and times out) without stop().
    const script = `
      import { Publisher } from 'zeromq';
      import { ZmqListener } from './indexer/node/zmq.ts';
      const pub = new Publisher({ linger: 0 });
      await pub.bind('tcp://127.0.0.1:*');
      const listener = new ZmqListener({ endpoint: pub.lastEndpoint });
      await listener.start();
      while (listener.lastMessageAt === 0) {
        await pub.send(['sequence', Buffer.alloc(33, 0x43), Buffer.alloc(4)]);
        await new Promise((r) => setTimeout(r, 20));
      }
      await listener.stop();
      pub.close();
      console.log('stopped');
    `;
    const r = spawnSync(process.execPath, ['--no-warnings', '--loader', 'ts-node/esm', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '', TS_NODE_TRANSPILE_ONLY: '1' },
      // Compiling with ts-node takes seconds on a loaded machine; only a hang should hit this.
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('stopped');
    expect(r.status).toBe(0);
  }, 120_000);

  test('a stopped listener can be started again', async () => {
    const h = await connect();
    await h.listener.stop();
    await h.listener.start();
    const seen = h.listener.counters.messages;
    await probeUntil(() => h.listener.counters.messages > seen, () => h.pub.publishMempool(PROBE_TX, 'A'));
    await h.pub.publishSequence(H1, 'C');
    await waitFor(() => h.wakes.some((w) => w.hash === H1), 'a block after restarting');
  });
});
