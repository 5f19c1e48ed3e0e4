import { Publisher } from 'zeromq';
import { createLogger } from '../indexer/log.js';
import { ZmqListener } from '../indexer/node/zmq.js';
import { waitFor } from './helpers/zmqpub.js';

/*
 * The logger between the ZMQ listener and the operator's terminal: a real
 * publisher floods the listener with garbage, and the log must stay readable
 * (a bounded number of lines, every message accounted for) and harmless
 * (control bytes from a topic escaped, never written raw).
 */

let pub: Publisher | undefined;
let listener: ZmqListener | undefined;
afterEach(async () => {
  await listener?.stop();
  pub?.close();
  pub = listener = undefined;
});

/** A publisher that queues without dropping, and a listener logging through `log`. */
async function pair(log: ReturnType<typeof createLogger>): Promise<{ pub: Publisher; listener: ZmqListener }> {
  pub = new Publisher({ linger: 0, sendHighWaterMark: 0 });
  await pub.bind('tcp://127.0.0.1:*');
  listener = new ZmqListener({ endpoint: pub.lastEndpoint!, log });
  await listener.start();
  // The slow joiner: probe with garbage until the subscription has reached the publisher.
  for (let i = 0; listener.counters.messages === 0; i++) {
    if (i > 500) throw new Error('the listener never received a probe');
    await pub.send(['sequence', Buffer.alloc(1), Buffer.alloc(4)]);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { pub, listener };
}

interface Line { msg: string; repeated?: number; topic?: string }

describe('logging a flood of bad ZMQ messages from a real publisher', () => {
  it('writes one burst and one count per kind instead of 20 000 lines, and accounts for every message', async () => {
    const lines: Line[] = [];
    const log = createLogger({ json: true, write: (l) => lines.push(JSON.parse(l) as Line), throttleMs: 3_600_000, burst: 10 });
    const { pub, listener } = await pair(log);
    const probes = listener.counters.garbage;
    for (let i = 0; i < 20_000; i++) await pub.send(['sequence', Buffer.alloc(7, i & 0xff), Buffer.alloc(4)]);
    await waitFor(() => listener.counters.garbage === probes + 20_000, () => `20 000 garbage messages, got ${listener.counters.garbage - probes}`, 120_000);
    log.flush();
    const garbage = lines.filter((l) => l.msg === 'zmq garbage message');
    expect(garbage.length).toBe(11);
    expect(garbage.slice(0, 10).every((l) => l.repeated === undefined)).toBe(true);
    expect(garbage[10]!.repeated).toBe(probes + 20_000 - 10);
  }, 180_000);

  it('shows an ESC byte of a message topic escaped in a text log line, never raw', async () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) });
    const { pub, listener } = await pair(log);
    const before = listener.counters.garbage;
    // ZMQ filters topics by prefix: the listener's "sequence" subscription lets this one through.
    await pub.send([Buffer.from('sequence\x1b[2J\x9b31m', 'latin1'), Buffer.alloc(32), Buffer.alloc(4)]);
    await waitFor(() => listener.counters.garbage > before, 'the garbage message', 10_000);
    const line = lines.find((l) => l.includes('unknown-topic'));
    expect(line).toBeDefined();
    expect(line).toContain('topic="sequence\\u001b[2J\\u009b31m"');
    expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  });
});
