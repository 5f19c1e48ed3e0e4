/**
 * The coin file's reader thread (coinfile.ts `preread`): looks up, in the
 * file the owner shares through `ctl`, the coins a block about to be
 * connected will spend, while the main thread connects the block before it.
 * Each message names a request in shared memory; the answers go back there
 * (`serve`), one at a time, never in a reply.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serve, stallUntilPassed, type PrereadRequest } from './coinfile.js';

const port = parentPort;
if (port !== null) {
  const { ctl, stall } = workerData as { ctl: Int32Array; stall: number };
  // A test's slow reader (CoinFile.readerStall): stuck inside every Nth lookup until the owner no longer needs it.
  const opts = stall > 0 ? { stall: (head: Int32Array, i: number): void => { if (i % stall === stall - 1) stallUntilPassed(head, i); } } : {};
  port.on('message', (req: PrereadRequest) => serve(ctl, req, opts));
}
