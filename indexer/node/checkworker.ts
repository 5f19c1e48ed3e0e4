/**
 * Thread entry of the follower's block checks (blockcheck.ts): each request
 * is a group of blocks from the node; the reply carries their txids, or why
 * a block is not the one asked for.
 */
import { parentPort } from 'node:worker_threads';
import { answer, type CheckRequest } from './blockcheck.js';

const port = parentPort;
if (port !== null) {
  port.on('message', (req: CheckRequest) => {
    const reply = answer(req);
    port.postMessage(reply, [reply.txids]);
  });
}
