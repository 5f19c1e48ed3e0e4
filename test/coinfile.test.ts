import { createHash } from 'node:crypto';
import { ftruncateSync, mkdtempSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { CoinFile, CoinFileError, PAGE, type CoinWrites } from '../indexer/store/coinfile.js';

/*
 * The coin file a throwaway recount spills into (store/coinfile.ts), alone:
 * against a Map, through overflow pages, growth, blobs, and a damaged file.
 */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-coinfile-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Outpoint n:vout as the file keys it (txid, u32be vout). */
function outpoint(n: number, vout: number): Buffer {
  const op = Buffer.alloc(36);
  createHash('sha256').update(`tx${n}`).digest().copy(op);
  op.writeUInt32BE(vout, 32);
  return op;
}

function valueOf(n: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (n * 31 + i * 7) & 0xff;
  return b;
}

/** A spill of `dels` then `puts`, as the coin view hands it over. */
/** One change to a coin: its outpoint, put (else delete), and the seed and extra length of the value a put writes. */
type SpillOp = [Buffer, boolean, number, number];

/**
 * One spill of `ops` into `file` and into `model` alike. Like the coin view's
 * spills, it deletes only coins the file holds, each at most once, and puts
 * each key once (the last put wins).
 */
function spillBoth(file: CoinFile, model: Map<string, Buffer>, ops: SpillOp[]): void {
  const dels: Buffer[] = [];
  const puts = new Map<string, [Buffer, Buffer]>();
  for (const [k, put, n, len] of ops) {
    const key = k.toString('latin1');
    if (!put && model.has(key) && !puts.has(key) && !dels.some((d) => d.equals(k))) dels.push(k);
    if (put) puts.set(key, [k, valueOf(n + len, 12 + len)]);
  }
  for (const d of dels) model.delete(d.toString('latin1'));
  // When no put meets a key the file still holds, the spill says so, as the coin view's do (`CoinWrites.fresh`).
  const fresh = [...puts.keys()].every((key) => !model.has(key));
  file.write({ ...writes(dels, [...puts.values()]), fresh });
  for (const [key, [, v]] of puts) model.set(key, v);
}

function writes(dels: Buffer[], puts: Array<[Buffer, Buffer]>): CoinWrites {
  return {
    dels: dels.length,
    puts: puts.length,
    delKey: (i) => ({ buf: dels[i]!, at: 0 }),
    putKey: (i) => ({ buf: puts[i]![0], at: 0 }),
    putLength: (i) => puts[i]![1].length,
    putValue: (i) => puts[i]![1],
    putInto: (i, out, keyAt, valueAt) => {
      out.set(puts[i]![0], keyAt);
      out.set(puts[i]![1], valueAt);
    },
  };
}

function expectSame(file: CoinFile, model: Map<string, Buffer>, absent: Buffer[]): void {
  for (const [k, v] of model) expect(file.get(Buffer.from(k, 'latin1'))?.toString('hex')).toBe(v.toString('hex'));
  for (const k of absent) if (!model.has(k.toString('latin1'))) expect(file.get(k)).toBeUndefined();
  const listed = new Map([...file.entries()].map(([k, v]) => [k.toString('latin1'), v.toString('hex')]));
  expect(listed).toEqual(new Map([...model].map(([k, v]) => [k, v.toString('hex')])));
  expect(file.count).toBe(model.size);
}

describe('CoinFile', () => {
  it('behaves like a Map through random spills of deletes and puts, growing from one page', () => {
    fc.assert(fc.property(
      fc.array(fc.array(fc.tuple(fc.nat(300), fc.nat(2), fc.boolean(), fc.nat(90)), { maxLength: 150 }), { minLength: 1, maxLength: 8 }),
      (spills) => {
        const file = CoinFile.create(dir, 1);
        const model = new Map<string, Buffer>();
        const seen: Buffer[] = [];
        try {
          for (const spill of spills) {
            const ops = spill.map(([n, vout, put, len]): SpillOp => [outpoint(n, vout), put, n, len]);
            for (const [k] of ops) seen.push(k);
            spillBoth(file, model, ops);
            expectSame(file, model, seen);
          }
        } finally {
          file.close();
        }
      },
    ), { numRuns: 25 });
  });

  it('finds entries that overflowed into the next pages, and grows by rehashing', () => {
    const file = CoinFile.create(dir, 1);
    try {
      // Entries of ~500 bytes: about seven to a page, so homes pile up past their page.
      const model = new Map<string, Buffer>();
      for (let round = 0; round < 4; round++) {
        const puts: Array<[Buffer, Buffer]> = [];
        for (let i = 0; i < 200; i++) puts.push([outpoint(round * 1000 + i, 0), valueOf(i, 460 + (i % 40))]);
        file.write(writes([], puts));
        for (const [k, v] of puts) model.set(k.toString('latin1'), v);
      }
      // From one page to room for 800 entries of ~500 bytes, rehashing on the way.
      expect(file.grows).toBeGreaterThanOrEqual(2);
      expect(file.pageCount).toBeGreaterThanOrEqual(128);
      file.reads = 0;
      file.lookups = 0;
      expectSame(file, model, []);
      // Some lookups read a second page: their entries live past their home.
      expect(file.reads).toBeGreaterThan(file.lookups);
    } finally {
      file.close();
    }
  });

  it('deletes many coins of a page in one spill, those that overflowed past their home page among them', () => {
    const file = CoinFile.create(dir, 1);
    try {
      // Entries of ~300-500 bytes: eight to fourteen to a page, many past their home.
      const model = new Map<string, Buffer>();
      const keys: Buffer[] = [];
      for (let round = 0; round < 3; round++) {
        const puts: Array<[Buffer, Buffer]> = [];
        for (let i = 0; i < 300; i++) {
          const k = outpoint(round * 1000 + i, i % 3);
          puts.push([k, valueOf(i, 300 + ((i * 7) % 200))]);
          keys.push(k);
        }
        file.write(writes([], puts));
        for (const [k, v] of puts) model.set(k.toString('latin1'), v);
      }
      file.reads = 0;
      file.lookups = 0;
      expectSame(file, model, []);
      expect(file.reads).toBeGreaterThan(file.lookups);
      // Two spills deleting every third coin, then every other one left, with puts of new coins among them.
      for (const pick of [(j: number): boolean => j % 3 === 0, (j: number): boolean => j % 2 === 1]) {
        const dels = keys.filter((k, j) => pick(j) && model.has(k.toString('latin1')));
        const puts: Array<[Buffer, Buffer]> = dels.slice(0, 40).map((_, i) => [outpoint(9000 + model.size + i, 7), valueOf(i, 200 + i)]);
        file.write({ ...writes(dels, puts), fresh: true });
        for (const k of dels) model.delete(k.toString('latin1'));
        for (const [k, v] of puts) model.set(k.toString('latin1'), v);
        expectSame(file, model, dels);
      }
      expect(file.count).toBe(model.size);
    } finally {
      file.close();
    }
  });

  it('keeps values too long for a page in its blob file', () => {
    const file = CoinFile.create(dir, 4);
    try {
      const big = valueOf(7, 70_000);
      const mid = valueOf(8, 513);
      // Fresh puts (nothing to replace) go straight into their pages, except those whose value is a blob.
      file.write({ ...writes([], [[outpoint(1, 0), big], [outpoint(2, 5), mid], [outpoint(3, 0), valueOf(9, 30)]]), fresh: true });
      expect(file.get(outpoint(1, 0))?.equals(big)).toBe(true);
      expect(file.get(outpoint(2, 5))?.equals(mid)).toBe(true);
      expect(file.get(outpoint(3, 0))?.equals(valueOf(9, 30))).toBe(true);
      file.write(writes([outpoint(1, 0)], [[outpoint(4, 1), big]]));
      expect(file.get(outpoint(1, 0))).toBeUndefined();
      expect(file.get(outpoint(4, 1))?.equals(big)).toBe(true);
    } finally {
      file.close();
    }
  });

  it('deletes then adds the same outpoint again, and a put replaces what a key holds', () => {
    const file = CoinFile.create(dir, 2);
    try {
      const k = outpoint(5, 1);
      file.write(writes([], [[k, valueOf(1, 20)]]));
      file.write(writes([k], [[k, valueOf(2, 40)]]));
      expect(file.get(k)?.equals(valueOf(2, 40))).toBe(true);
      file.write(writes([k], []));
      expect(file.get(k)).toBeUndefined();
      file.write(writes([], [[k, valueOf(3, 25)]]));
      file.write(writes([], [[k, valueOf(4, 15)]]));
      expect(file.get(k)?.equals(valueOf(4, 15))).toBe(true);
      expect(file.count).toBe(1);
    } finally {
      file.close();
    }
  });

  it('refuses to delete a coin it does not hold', () => {
    const file = CoinFile.create(dir, 2);
    try {
      file.write(writes([], [[outpoint(1, 0), valueOf(1, 20)]]));
      expect(() => file.write(writes([outpoint(2, 0)], []))).toThrow(CoinFileError);
    } finally {
      file.close();
    }
  });

  it('leaves no file behind: its name is gone while it is open, and its space when closed', () => {
    const file = CoinFile.create(dir, 2);
    file.write(writes([], [[outpoint(1, 0), valueOf(1, 2000)]]));
    expect(readdirSync(dir)).toEqual([]);
    file.close();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('a damaged coin file', () => {
  function filled(n: number): { file: CoinFile; model: Map<string, Buffer> } {
    const file = CoinFile.create(dir, 8);
    const model = new Map<string, Buffer>();
    const puts: Array<[Buffer, Buffer]> = [];
    for (let i = 0; i < n; i++) puts.push([outpoint(i, i % 3), valueOf(i, 12 + (i % 30))]);
    file.write(writes([], puts));
    for (const [k, v] of puts) model.set(k.toString('latin1'), v);
    return { file, model };
  }

  it('truncated: a lookup is an error naming the truncation', () => {
    const { file, model } = filled(300);
    try {
      ftruncateSync(file.fd, PAGE / 2);
      for (const k of [...model.keys()].slice(0, 40)) expect(() => file.get(Buffer.from(k, 'latin1'))).toThrow(/truncated/);
      expect(() => [...file.entries()]).toThrow(/truncated/);
    } finally {
      file.close();
    }
  });

  it('a changed byte in any entry: every lookup gives the right coin or an error, never another answer', () => {
    const { file, model } = filled(400);
    try {
      // Flip one byte of the first entry's value in every page that holds one.
      const page = Buffer.alloc(PAGE);
      let flipped = 0;
      for (let p = 0; p < file.pageCount; p++) {
        readSync(file.fd, page, 0, PAGE, p * PAGE);
        if (page.readUInt16LE(0) <= 4) continue;
        page[4 + 42 + 3] ^= 0x10;
        writeSync(file.fd, page, 0, PAGE, p * PAGE);
        flipped++;
      }
      expect(flipped).toBeGreaterThan(0);
      let errors = 0;
      for (const [k, v] of model) {
        try {
          expect(file.get(Buffer.from(k, 'latin1'))?.toString('hex')).toBe(v.toString('hex'));
        } catch (err) {
          expect(err).toBeInstanceOf(CoinFileError);
          errors++;
        }
      }
      expect(errors).toBe(flipped);
      expect(() => [...file.entries()]).toThrow(/fails its check/);
    } finally {
      file.close();
    }
  });

  it('a page whose entries claim to run past it is an error', () => {
    const { file, model } = filled(50);
    try {
      const page = Buffer.alloc(PAGE);
      for (let p = 0; p < file.pageCount; p++) {
        readSync(file.fd, page, 0, PAGE, p * PAGE);
        page.writeUInt16LE(PAGE + 100, 0);
        writeSync(file.fd, page, 0, PAGE, p * PAGE);
      }
      for (const k of model.keys()) expect(() => file.get(Buffer.from(k, 'latin1'))).toThrow(CoinFileError);
    } finally {
      file.close();
    }
  });
});

/*
 * Reads made ahead (`preread`, answered on a reader thread in the built
 * CLI; here at once, on this thread, with the same `answer`): a lookup takes
 * an answer only while the file is as it was when the answer was read.
 */
describe('reads made ahead', () => {
  const ask = (file: CoinFile, keys: Buffer[]): void => file.preread(Buffer.concat(keys), keys.length);

  it('are used while the file has not changed: no read of its own', async () => {
    const file = CoinFile.create(dir, 4, 'inline');
    try {
      const a = outpoint(1, 0);
      const b = outpoint(2, 1);
      const gone = outpoint(3, 0);
      file.write(writes([], [[a, valueOf(1, 20)], [b, valueOf(2, 30)]]));
      ask(file, [a, gone, b]);
      await file.settle();
      const reads = file.reads;
      expect(file.get(a)?.toString('hex')).toBe(valueOf(1, 20).toString('hex'));
      expect(file.get(gone)).toBeUndefined();
      expect(file.get(b)?.toString('hex')).toBe(valueOf(2, 30).toString('hex'));
      expect(file.answered).toBe(3);
      expect(file.reads).toBe(reads);
      // A key not asked for, or asked again out of order, is read.
      expect(file.get(a)?.toString('hex')).toBe(valueOf(1, 20).toString('hex'));
      expect(file.reads).toBeGreaterThan(reads);
      expect(file.answered).toBe(3);
    } finally {
      file.close();
    }
  });

  it('are never used once a spill has changed the file, whether it came before or after they were taken in', async () => {
    for (const takeFirst of [false, true]) {
      const file = CoinFile.create(dir, 4, 'inline');
      try {
        const spent = outpoint(1, 0);
        const replaced = outpoint(2, 0);
        const made = outpoint(3, 0);
        const remade = outpoint(4, 0);
        file.write(writes([], [[spent, valueOf(1, 20)], [replaced, valueOf(2, 20)], [remade, valueOf(4, 20)]]));
        ask(file, [spent, replaced, made, remade]);
        if (takeFirst) await file.settle();
        // Spent, replaced, made (absent when read), and spent then made again with another value.
        file.write(writes([spent, remade], [[replaced, valueOf(22, 25)], [made, valueOf(3, 15)], [remade, valueOf(44, 40)]]));
        if (!takeFirst) await file.settle();
        expect(file.get(spent)).toBeUndefined();
        expect(file.get(replaced)?.toString('hex')).toBe(valueOf(22, 25).toString('hex'));
        expect(file.get(made)?.toString('hex')).toBe(valueOf(3, 15).toString('hex'));
        expect(file.get(remade)?.toString('hex')).toBe(valueOf(44, 40).toString('hex'));
        expect(file.answered).toBe(0);
      } finally {
        file.close();
      }
    }
  });

  it('are never used across a grow, which moves every coin into a new file', async () => {
    const file = CoinFile.create(dir, 1, 'inline');
    try {
      const first = Array.from({ length: 20 }, (_, i) => outpoint(i, 0));
      file.write(writes([], first.map((k, i) => [k, valueOf(i, 40)])));
      const pages = file.pageCount;
      ask(file, first);
      const more = Array.from({ length: 400 }, (_, i) => outpoint(1000 + i, 1));
      file.write(writes(first.slice(0, 10), more.map((k, i) => [k, valueOf(i, 40)])));
      expect(file.pageCount).toBeGreaterThan(pages);
      await file.settle();
      for (const [i, k] of first.entries()) expect(file.get(k)?.toString('hex')).toBe(i < 10 ? undefined : valueOf(i, 40).toString('hex'));
      expect(file.answered).toBe(0);
    } finally {
      file.close();
    }
  });

  it('a key the reader has not answered yet is read here, never waited for; the reader then skips every key looked up', () => {
    // 'manual': the reader's work runs only when the test steps it, a few lookups at a time.
    const file = CoinFile.create(dir, 4, 'manual');
    try {
      const keys = Array.from({ length: 6 }, (_, i) => outpoint(i, 0));
      const absent = outpoint(99, 0);
      file.write(writes([], keys.map((k, i) => [k, valueOf(i, 20 + i)])));
      const asked = [keys[0]!, keys[1]!, absent, keys[2]!, keys[3]!, keys[4]!];
      ask(file, asked);
      file.settle();
      file.stepReader(2);
      const reads = file.reads;
      expect(file.get(keys[0]!)?.toString('hex')).toBe(valueOf(0, 20).toString('hex'));
      expect(file.get(keys[1]!)?.toString('hex')).toBe(valueOf(1, 21).toString('hex'));
      expect({ answered: file.answered, overtaken: file.overtaken, reads: file.reads }).toEqual({ answered: 2, overtaken: 0, reads });
      // Not answered yet: read here, the same as an answer would have been.
      expect(file.get(absent)).toBeUndefined();
      expect(file.get(keys[2]!)?.toString('hex')).toBe(valueOf(2, 22).toString('hex'));
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 2, overtaken: 2 });
      expect(file.reads).toBeGreaterThan(reads);
      // One more lookup for the reader: it skips the keys gone past (and the one after `absent`,
      // which that lookup took for this thread) and answers the next one asked.
      file.stepReader(1);
      expect(file.get(keys[3]!)?.toString('hex')).toBe(valueOf(3, 23).toString('hex'));
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 3, overtaken: 2 });
      expect(file.get(keys[4]!)?.toString('hex')).toBe(valueOf(4, 24).toString('hex'));
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 3, overtaken: 3 });
      // A key the block did not ask for is read, and matches nothing asked.
      expect(file.get(keys[5]!)?.toString('hex')).toBe(valueOf(5, 25).toString('hex'));
      expect(file.answered).toBe(3);
    } finally {
      file.close();
    }
  });

  it('a lookup that finds the reader behind takes half of the keys after it too, and the reader goes on with the other half', () => {
    const file = CoinFile.create(dir, 4, 'manual');
    try {
      const keys = Array.from({ length: 9 }, (_, i) => outpoint(i, 0));
      file.write(writes([], keys.map((k, i) => [k, valueOf(i, 16 + i)])));
      const value = (i: number): string | undefined => file.get(keys[i]!)?.toString('hex');
      ask(file, keys);
      file.settle();
      // Key 0 not answered: this thread reads it and keys 1-4; the reader skips to key 5.
      expect(value(0)).toBe(valueOf(0, 16).toString('hex'));
      file.stepReader(2);
      for (let i = 1; i <= 6; i++) expect(value(i)).toBe(valueOf(i, 16 + i).toString('hex'));
      // Keys 5 and 6 were the reader's answers.
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 2, overtaken: 5 });
      // One more step: the reader answers key 7; key 8 it has not got to, and is read here.
      file.stepReader(1);
      expect(value(7)).toBe(valueOf(7, 23).toString('hex'));
      expect(value(8)).toBe(valueOf(8, 24).toString('hex'));
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 3, overtaken: 6 });
    } finally {
      file.close();
    }
  });

  it('a reader that never comes costs nothing but the reads: every key is read here', () => {
    const file = CoinFile.create(dir, 4, 'manual');
    try {
      const keys = Array.from({ length: 5 }, (_, i) => outpoint(i, 0));
      file.write(writes([], keys.slice(0, 3).map((k, i) => [k, valueOf(i, 30)])));
      for (let block = 0; block < 6; block++) {
        ask(file, keys);
        file.settle();
        for (const [i, k] of keys.entries()) expect(file.get(k)?.toString('hex')).toBe(i < 3 ? valueOf(i, 30).toString('hex') : undefined);
      }
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 0, overtaken: 30 });
    } finally {
      file.close();
    }
  });

  it('a reader still inside requests the owner dropped holds their buffers, never the owner: no read ahead until it lets one go', () => {
    const file = CoinFile.create(dir, 4, 'manual');
    try {
      const keys = Array.from({ length: 4 }, (_, i) => outpoint(i, 0));
      file.write(writes([], keys.map((k, i) => [k, valueOf(i, 30)])));
      const block = (): void => {
        ask(file, keys);
        file.settle();
        // The reader answers one key of this block's request and is still inside it when the next block asks.
        file.stepReader(1, true);
        for (const [i, k] of keys.entries()) expect(file.get(k)?.toString('hex')).toBe(valueOf(i, 30).toString('hex'));
      };
      // Three requests kept: each block's reader answers its first key.
      for (let i = 0; i < 3; i++) block();
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 3, overtaken: 9 });
      // All three still the reader's (it was told to stop, and has not yet left): this block is not asked ahead at all.
      block();
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 3, overtaken: 9 });
      // The reader leaves the ones it was told to stop; asking ahead works again.
      file.stepReader(0);
      block();
      expect({ answered: file.answered, overtaken: file.overtaken }).toEqual({ answered: 4, overtaken: 12 });
    } finally {
      file.close();
    }
  });

  it('give the same answers as reading with a reader at any pace: random spills, and the reader stepped at random points, even inside a block', () => {
    fc.assert(fc.property(
      fc.array(fc.record({
        ops: fc.array(fc.tuple(fc.nat(120), fc.boolean(), fc.nat(60)), { maxLength: 60 }),
        asked: fc.array(fc.nat(130), { maxLength: 40 }),
        when: fc.nat(2),
        before: fc.nat(5),
        // Reader steps between the lookups, one entry a lookup (cycled).
        between: fc.array(fc.nat(3), { minLength: 1, maxLength: 10 }),
      }), { minLength: 1, maxLength: 8 }),
      (steps) => {
        const file = CoinFile.create(dir, 1, 'manual');
        const model = new Map<string, Buffer>();
        try {
          for (const { ops, asked, when, before, between } of steps) {
            const keys = asked.map((n) => outpoint(n, 0));
            if (when < 2) ask(file, keys);
            file.stepReader(before);
            if (when === 0) file.settle();
            spillBoth(file, model, ops.map(([n, put, len]): SpillOp => [outpoint(n, 0), put, n, len]));
            if (when === 2) ask(file, keys);
            if (when !== 0) file.settle();
            for (const [i, k] of keys.entries()) {
              file.stepReader(between[i % between.length]!);
              expect(file.get(k)?.toString('hex')).toBe(model.get(k.toString('latin1'))?.toString('hex'));
            }
          }
        } finally {
          file.close();
        }
      },
    ), { numRuns: 100 });
  });

  it('give the same answers as reading, through random spills with reads asked ahead at random points', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(fc.array(fc.tuple(fc.nat(120), fc.boolean(), fc.nat(60)), { maxLength: 60 }), fc.array(fc.nat(130), { maxLength: 40 }), fc.nat(2)), { minLength: 1, maxLength: 8 }),
      async (steps) => {
        const file = CoinFile.create(dir, 1, 'inline');
        const model = new Map<string, Buffer>();
        try {
          for (const [ops, asked, when] of steps) {
            const keys = asked.map((n) => outpoint(n, 0));
            // Asked before the spill, taken in before or after it; or asked and taken in after it.
            if (when < 2) ask(file, keys);
            if (when === 0) await file.settle();
            spillBoth(file, model, ops.map(([n, put, len]): SpillOp => [outpoint(n, 0), put, n, len]));
            if (when === 2) ask(file, keys);
            if (when !== 0) await file.settle();
            for (const k of keys) expect(file.get(k)?.toString('hex')).toBe(model.get(k.toString('latin1'))?.toString('hex'));
          }
        } finally {
          file.close();
        }
      },
    ), { numRuns: 60 });
  });
});
