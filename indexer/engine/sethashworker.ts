/**
 * Worker-thread entry of the UTXO set hash (sethash.ts): multiplies a batch
 * of MuHash elements together and sends the product back.
 */
import { parentPort } from 'node:worker_threads';
import { productOf, type ElementBatch } from './sethash.js';

const port = parentPort;
if (port !== null) {
  port.on('message', (m: ElementBatch) => {
    port.postMessage(productOf(m).toString(16));
  });
}
