import { readFileSync } from 'node:fs';
import * as bitcoin from 'bitcoinjs-lib';
import fc from 'fast-check';
import { BlockParseError, forEachTxid, scanBlock, scanHeader } from '../indexer/chain/scanner.js';
import { merkleRoot } from '../indexer/chain/pow.js';
import { fixturePath } from './helpers/blocksdir.js';

interface TestnetBlock { height: number; hash: string; note: string; block: string }

const testnet = (JSON.parse(readFileSync(fixturePath('core-testnet/blocks.json'), 'utf8')) as { blocks: TestnetBlock[] }).blocks;
const blocks = testnet.map((b) => ({ ...b, bytes: Buffer.from(b.block, 'hex') }));

const rpc = (internal: Uint8Array): string => Buffer.from(internal).reverse().toString('hex');

/** Runs `fn` and reports what it threw, so properties can say "only BlockParseError". */
function outcome(fn: () => unknown): 'ok' | 'parse-error' | Error {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof BlockParseError ? 'parse-error' : (err as Error);
  }
}

describe('scanning the five Core testnet blocks', () => {
  test.each(blocks)('block $height ($note) hashes to the hash Core reports', ({ bytes, hash }) => {
    expect(rpc(scanBlock(bytes).hash)).toBe(hash);
  });

  test.each(blocks)('every txid of block $height matches bitcoinjs-lib', ({ bytes, block }) => {
    const expected = bitcoin.Block.fromHex(block).transactions?.map((tx) => tx.getId());
    expect(scanBlock(bytes).txs.map((tx) => rpc(tx.txid))).toEqual(expected);
  });

  test.each(blocks)('the merkle root over the txids of block $height equals its header', ({ bytes }) => {
    const scanned = scanBlock(bytes);
    expect(merkleRoot(scanned.txs.map((tx) => tx.txid)).equals(scanned.merkleRoot)).toBe(true);
  });

  test.each(blocks)('inputs and outputs of block $height match bitcoinjs-lib', ({ bytes, block }) => {
    const reference = bitcoin.Block.fromHex(block).transactions ?? [];
    const scanned = scanBlock(bytes).txs;
    scanned.forEach((tx, i) => {
      expect(tx.index).toBe(i);
      expect(tx.inputs.map((inp) => [inp.prevTxid.toString('hex'), inp.prevVout]))
        .toEqual(reference[i].ins.map((inp) => [Buffer.from(inp.hash).toString('hex'), inp.index]));
      expect(tx.outputs.map((out) => [out.value, out.script.toString('hex')]))
        .toEqual(reference[i].outs.map((out) => [out.value, Buffer.from(out.script).toString('hex')]));
    });
  });

  test.each(blocks)('only the first transaction of block $height is a coinbase', ({ bytes }) => {
    expect(scanBlock(bytes).txs.map((tx) => tx.coinbase)).toEqual(scanBlock(bytes).txs.map((_, i) => i === 0));
  });

  test('the witness block has segwit transactions whose txids leave the witness out', () => {
    const { bytes, block } = blocks.find((b) => b.note === 'Includes witness data') ?? blocks[0];
    const reference = bitcoin.Block.fromHex(block).transactions ?? [];
    const segwit = reference.filter((tx) => tx.hasWitnesses());
    expect(segwit.length).toBeGreaterThan(0);
    for (const tx of segwit) expect(tx.getId()).not.toBe(rpc(tx.getHash(true)));
    expect(scanBlock(bytes).txs.map((tx) => rpc(tx.txid))).toEqual(reference.map((tx) => tx.getId()));
  });

  test('header fields come from the 80-byte header', () => {
    const { bytes } = blocks[0];
    const header = scanHeader(bytes.subarray(0, 80));
    expect(rpc(header.hash)).toBe(blocks[0].hash);
    expect(header.time).toBe(1296688602);
    expect(header.bits).toBe(0x1d00ffff);
    expect(header.prevHash.equals(Buffer.alloc(32))).toBe(true);
  });

  test('scripts and prevout txids are views into the block, not copies', () => {
    const { bytes } = blocks[3];
    const tx = scanBlock(bytes).txs[1];
    expect(tx.outputs[0].script.buffer).toBe(bytes.buffer);
    expect(tx.inputs[0].prevTxid.buffer).toBe(bytes.buffer);
  });

  test('forEachTxid yields the same txids as scanBlock, in order', () => {
    for (const { bytes } of blocks) {
      const seen: string[] = [];
      const n = forEachTxid(bytes, (txid, i) => seen.push(`${i}:${rpc(txid)}`));
      expect(n).toBe(seen.length);
      expect(seen).toEqual(scanBlock(bytes).txs.map((tx) => `${tx.index}:${rpc(tx.txid)}`));
    }
  });
});

describe('rejecting malformed blocks', () => {
  const pick = fc.integer({ min: 0, max: blocks.length - 1 });

  test('a block cut short anywhere throws BlockParseError', () => {
    fc.assert(fc.property(pick, fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (bi, where) => {
      const bytes = blocks[bi].bytes;
      const cut = Math.floor(where * bytes.length);
      expect(outcome(() => scanBlock(bytes.subarray(0, cut)))).toBe('parse-error');
      expect(outcome(() => forEachTxid(bytes.subarray(0, cut), () => undefined))).toBe('parse-error');
    }), { numRuns: 300 });
  });

  test('trailing bytes after the last transaction throw BlockParseError at the end of the block', () => {
    fc.assert(fc.property(pick, fc.uint8Array({ minLength: 1, maxLength: 40 }), (bi, extra) => {
      const bytes = blocks[bi].bytes;
      const err = (() => {
        try {
          scanBlock(Buffer.concat([bytes, extra]));
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(BlockParseError);
      expect((err as BlockParseError).offset).toBe(bytes.length);
      expect((err as BlockParseError).message).toContain(`trailing bytes after the last transaction at byte offset ${bytes.length}`);
    }), { numRuns: 50 });
  });

  test('random byte changes either parse or throw BlockParseError, never anything else', () => {
    const change = fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), value: fc.integer({ min: 0, max: 255 }) });
    fc.assert(fc.property(pick, fc.array(change, { minLength: 1, maxLength: 8 }), (bi, changes) => {
      const bytes = Buffer.from(blocks[bi].bytes);
      for (const { at, value } of changes) bytes[Math.floor(at * bytes.length)] = value;
      const result = outcome(() => scanBlock(bytes));
      expect(result === 'ok' || result === 'parse-error').toBe(true);
    }), { numRuns: 1000 });
  });

  test('random bytes after a valid header never throw anything but BlockParseError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => {
      const result = outcome(() => scanBlock(Buffer.concat([blocks[0].bytes.subarray(0, 80), tail])));
      expect(result === 'ok' || result === 'parse-error').toBe(true);
    }), { numRuns: 1000 });
  });

  test('a transaction count the remaining bytes cannot hold is absurd, reported at offset 80', () => {
    const bytes = Buffer.concat([blocks[0].bytes.subarray(0, 80), Buffer.from([0xfd, 0xff, 0xff]), blocks[0].bytes.subarray(81)]);
    expect(() => scanBlock(bytes)).toThrow(/absurd transaction count 65535: .* at byte offset 80$/);
  });

  test('a non-canonical compact size is rejected as Core rejects it', () => {
    const bytes = Buffer.concat([blocks[0].bytes.subarray(0, 80), Buffer.from([0xfd, 0x01, 0x00]), blocks[0].bytes.subarray(81)]);
    expect(() => scanBlock(bytes)).toThrow(/non-canonical compact size for transaction count at byte offset 80/);
  });

  test('a segwit flag other than 1 is rejected', () => {
    const { bytes } = blocks.find((b) => b.note === 'Includes witness data') ?? blocks[0];
    const copy = Buffer.from(bytes);
    expect(copy.subarray(85, 87)).toEqual(Buffer.from([0, 1])); // coinbase marker and flag
    copy[86] = 2;
    expect(() => scanBlock(copy)).toThrow(/unknown segwit flag 2 in tx 0 at byte offset 86/);
  });

  test('a segwit flag with no witness data at all is rejected as superfluous', () => {
    // version, marker, flag, 1 input with empty scriptSig, 1 empty output, empty witness, locktime
    const tx = Buffer.concat([
      Buffer.from('01000000' + '0001' + '01', 'hex'), Buffer.alloc(32, 1), Buffer.from('00000000' + '00' + 'ffffffff', 'hex'),
      Buffer.from('01' + '0000000000000000' + '00' + '00' + '00000000', 'hex'),
    ]);
    const block = Buffer.concat([blocks[0].bytes.subarray(0, 80), Buffer.from([1]), tx]);
    expect(() => scanBlock(block)).toThrow(/superfluous witness flag in tx 0/);
  });

  test('hashing a segwit transaction in place leaves every byte of the block as it was', () => {
    const { bytes, block } = blocks.find((b) => b.note === 'Includes witness data') ?? blocks[0];
    const before = Buffer.from(bytes);
    const ids = scanBlock(bytes).txs.map((tx) => rpc(tx.txid));
    expect(bytes.equals(before)).toBe(true);
    expect(ids).toEqual((bitcoin.Block.fromHex(block).transactions ?? []).map((tx) => tx.getId()));
  });

  test('a segwit transaction whose witnesses take under 4 bytes hashes to its txid and is left intact', () => {
    // One input whose witness is a single empty item (2 bytes: count 1, length 0), so the
    // locktime starts 2 bytes after the outputs end and the in-place hash overlaps it.
    const tx = Buffer.concat([
      Buffer.from('02000000' + '0001' + '01', 'hex'), Buffer.alloc(32, 7), Buffer.from('03000000' + '00' + 'feffffff', 'hex'),
      Buffer.from('01' + 'e803000000000000' + '01' + '51', 'hex'), Buffer.from('0100', 'hex'), Buffer.from('a1b2c3d4', 'hex'),
    ]);
    const block = Buffer.concat([blocks[0].bytes.subarray(0, 80), Buffer.from([1]), tx]);
    const before = Buffer.from(block);
    const scanned = scanBlock(block);
    expect(block.equals(before)).toBe(true);
    expect(rpc(scanned.txs[0].txid)).toBe(bitcoin.Transaction.fromBuffer(tx).getId());
    const ids: string[] = [];
    forEachTxid(block, (id) => ids.push(rpc(id)));
    expect(ids).toEqual([rpc(scanned.txs[0].txid)]);
    expect(block.equals(before)).toBe(true);
  });

  test('an empty transaction (zero flag byte) parses as Core reads it: no inputs, no outputs', () => {
    const tx = Buffer.from('01000000' + '00' + '00' + '00000000', 'hex');
    const scanned = scanBlock(Buffer.concat([blocks[0].bytes.subarray(0, 80), Buffer.from([1]), tx]));
    expect(scanned.txs[0]).toMatchObject({ coinbase: false, inputs: [], outputs: [] });
  });

  test('a header shorter than 80 bytes throws BlockParseError', () => {
    expect(() => scanHeader(blocks[0].bytes.subarray(0, 79))).toThrow(BlockParseError);
  });
});

describe('scanBlock with txids from an earlier pass', () => {
  it('gives the same transactions as hashing them, for every real testnet block', () => {
    for (const b of testnet) {
      const bytes = Buffer.from(b.block, 'hex');
      const hashed = scanBlock(bytes);
      const reused = scanBlock(bytes, Buffer.concat(hashed.txs.map((t) => t.txid)));
      expect(reused).toEqual(hashed);
    }
  });

  it('refuses a txid list of the wrong length', () => {
    const bytes = Buffer.from(testnet[0]!.block, 'hex');
    expect(() => scanBlock(bytes, Buffer.alloc(64))).toThrow(BlockParseError);
  });
});
