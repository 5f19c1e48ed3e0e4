/**
 * Worker-thread entry of the chain pass: analyses runs of block records of a
 * blk file that the main thread shares with it (see chainpass.ts).
 */
import { parentPort } from 'node:worker_threads';
import { analyzeChunk } from './records.js';

export interface ChunkRequest {
  kind: 'chunk';
  id: number;
  file: SharedArrayBuffer;
  ranges: number[];
}

const port = parentPort;
if (port !== null) {
  port.on('message', (m: ChunkRequest) => {
    const { infos, txids } = analyzeChunk(Buffer.from(m.file), m.ranges);
    const ab = txids.buffer as ArrayBuffer;
    port.postMessage({ id: m.id, infos, txids: ab }, [ab]);
  });
}
