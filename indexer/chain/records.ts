import { detectAnnouncement, isAttempt } from '../../script/carrier.js';
import { parseFailure } from './blkfiles.js';
import { checkProofOfWork, merkleTreeOf } from './pow.js';
import { blockTxCount, scanHeader, walkTxidsInto } from './scanner.js';

/**
 * What the chain pass learns about one block record. Plain data (strings and
 * numbers), so it crosses a worker boundary cheaply; the txids travel
 * separately in one buffer per chunk.
 */
export interface RecordInfo {
  /** Absolute file offset of the block data (after magic and size). */
  offset: number;
  size: number;
  /** Header hash and previous-block hash, internal byte order, as latin1 strings. */
  key: string;
  prevKey: string;
  bits: number;
  txCount: number;
  /** Where this block's txids start in its chunk's txid buffer, 32 bytes each. */
  txidAt: number;
  /** Why the block fails proof of work or its merkle root (wrong or mutated); null when it is intact. */
  flaw: string | null;
  /** The record does not parse as a block: fatal for a recount, which cannot skip data. */
  error: string | null;
  /** Outputs that could enter the UTXO set (every script not starting with OP_RETURN). */
  spendable: number;
  /** Stake scripts (latin1) named by the block's well-formed announcement attempts. */
  stakes: string[];
}

export interface ChunkResult {
  infos: RecordInfo[];
  /** Every txid of the chunk, record after record; its own ArrayBuffer, so it can be transferred. */
  txids: Buffer;
}

/**
 * Checks a run of block records of one file: parses every transaction,
 * computes its txid, checks proof of work and the merkle root, and notes the
 * announcement stakes and the spendable-output count for the later passes.
 * `ranges` holds [offset, size] pairs into `file`, which is de-obfuscated.
 */
export function analyzeChunk(file: Buffer, ranges: readonly number[]): ChunkResult {
  const infos: RecordInfo[] = [];
  const sink = { buf: Buffer.allocUnsafe(64 * 1024), used: 0 };
  for (let r = 0; r < ranges.length; r += 2) {
    const offset = ranges[r]!;
    const size = ranges[r + 1]!;
    infos.push(analyzeRecord(file.subarray(offset, offset + size), offset, sink));
  }
  const txids = Buffer.from(new ArrayBuffer(sink.used));
  sink.buf.copy(txids, 0, 0, sink.used);
  return { infos, txids };
}

interface Sink {
  buf: Buffer;
  used: number;
}

function analyzeRecord(bytes: Buffer, offset: number, sink: Sink): RecordInfo {
  const txidAt = sink.used;
  const base = { offset, size: bytes.length, txidAt };
  const stakes = new Set<string>();
  let header;
  let walked;
  try {
    header = scanHeader(bytes);
    const need = txidAt + blockTxCount(bytes) * 32;
    if (need > sink.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, sink.buf.length * 2));
      sink.buf.copy(bigger, 0, 0, txidAt);
      sink.buf = bigger;
    }
    walked = walkTxidsInto(bytes, sink.buf, txidAt, (script) => {
      if (!isAttempt(script)) return;
      const a = detectAnnouncement(script);
      if (a?.ok) stakes.add(Buffer.from(a.announcement.stakeScript).toString('latin1'));
    });
  } catch (err) {
    return { ...base, key: '', prevKey: '', bits: 0, txCount: 0, flaw: null, spendable: 0, stakes: [], error: parseFailure(err) };
  }
  let flaw: string | null = null;
  if (!checkProofOfWork(header.hash, header.bits)) flaw = 'fails proof of work';
  else if (walked.txs === 0) flaw = 'has a wrong merkle root';
  else {
    const tree = merkleTreeOf(sink.buf.subarray(txidAt), walked.txs);
    if (!tree.root.equals(header.merkleRoot)) flaw = 'has a wrong merkle root';
    else if (tree.mutated) flaw = 'has a mutated merkle tree (repeated transactions, CVE-2012-2459)';
  }
  sink.used = txidAt + walked.txs * 32;
  return {
    ...base,
    key: header.hash.toString('latin1'),
    prevKey: header.prevHash.toString('latin1'),
    bits: header.bits,
    txCount: walked.txs,
    flaw,
    error: null,
    spendable: walked.spendable,
    stakes: [...stakes],
  };
}
