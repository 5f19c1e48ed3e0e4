/**
 * Worker-thread entry of the chain pass: analyses runs of block records of a
 * blk file that the main thread shares with it (see chainpass.ts), and runs
 * the fast recount's sweeps (stakesweep.ts).
 */
import { parentPort } from 'node:worker_threads';
import { analyzeChunk } from './records.js';
import { SweepWorker, type SweepMessage } from './stakesweep.js';

export interface ChunkRequest {
  kind: 'chunk';
  id: number;
  file: SharedArrayBuffer;
  ranges: number[];
}

const port = parentPort;
if (port !== null) {
  const sweeps = new SweepWorker();
  port.on('message', (m: ChunkRequest | SweepMessage) => {
    if (m.kind === 'chunk') {
      const { infos, txids } = analyzeChunk(Buffer.from(m.file), m.ranges);
      const ab = txids.buffer as ArrayBuffer;
      port.postMessage({ id: m.id, infos, txids: ab }, [ab]);
      return;
    }
    const reply = sweeps.handle(m);
    if (reply !== null) port.postMessage(reply, [reply.bytes]);
  });
}
