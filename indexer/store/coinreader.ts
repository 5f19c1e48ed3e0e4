/**
 * The coin file's reader thread (coinfile.ts `preread`): looks up, in the
 * file the owner shares through `ctl`, the coins a block about to be
 * connected will spend, while the main thread connects the block before it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { answer, type PrereadRequest } from './coinfile.js';

const port = parentPort;
if (port !== null) {
  const ctl = (workerData as { ctl: Int32Array }).ctl;
  port.on('message', (req: PrereadRequest) => {
    port.postMessage(answer(ctl, req));
  });
}
