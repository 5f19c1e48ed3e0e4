import fc from 'fast-check';
import { encodeRow, END_ROW, RowReader, SnapshotFileError } from '../indexer/snapshot/format.js';

/* The snapshot body's row framing, whatever the chunk sizes decompression hands over. */

const rowsArb = fc.uniqueArray(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.uint8Array({ maxLength: 3000 })), {
  selector: ([k]) => Buffer.from(k).toString('hex'), maxLength: 30,
}).map((rows) => rows.map(([k, v]): [Buffer, Buffer] => [Buffer.from(k), Buffer.from(v)]).sort(([a], [b]) => Buffer.compare(a, b)));

/** `b` cut at the given points. */
function cut(b: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...at, b.length]) {
    out.push(b.subarray(from, p));
    from = p;
  }
  return out;
}

describe('RowReader', () => {
  it('reads back the rows it was given, in any chunking', () => {
    fc.assert(fc.property(rowsArb, fc.array(fc.nat(), { maxLength: 40 }), (rows, points) => {
      const body = Buffer.concat([...rows.map(([k, v]) => encodeRow(k, v)), END_ROW]);
      const r = new RowReader('f');
      const got = cut(body, points).flatMap((c) => r.push(c));
      r.finish();
      expect(got).toEqual(rows);
      expect(r.bytes).toBe(body.length);
    }));
  });

  it('refuses rows out of order, a missing end row and bytes after it, and never throws anything else on random bytes', () => {
    const a = encodeRow(Buffer.of(2), Buffer.of(0));
    const b = encodeRow(Buffer.of(1), Buffer.of(0));
    expect(() => new RowReader('f').push(Buffer.concat([a, b]))).toThrow(/out of order/);
    const open = new RowReader('f');
    open.push(a);
    expect(() => open.finish()).toThrow(/stop before the end row/);
    expect(() => new RowReader('f').push(Buffer.concat([END_ROW, Buffer.of(0)]))).toThrow(/bytes follow its end row/);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        const r = new RowReader('f');
        r.push(Buffer.from(bytes));
        r.finish();
      } catch (err) {
        expect(err).toBeInstanceOf(SnapshotFileError);
      }
    }));
  });
});
