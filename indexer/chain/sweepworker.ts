/**
 * Worker-thread entry of the fast recount's sweep (stakesweep.ts): its own,
 * so that its threads load only what the sweep needs, not the chain pass.
 */
import { parentPort } from 'node:worker_threads';
import { SweepWorker, type SweepMessage } from './stakesweep.js';

const port = parentPort;
if (port !== null) {
  const sweeps = new SweepWorker();
  port.on('message', (m: SweepMessage) => {
    const reply = sweeps.handle(m);
    if (reply !== null) port.postMessage(reply, [reply.bytes]);
  });
}
