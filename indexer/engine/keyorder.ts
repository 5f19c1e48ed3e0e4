/**
 * Puts a spill's rows in about the order of their keys before they reach
 * LevelDB. LevelDB inserts every row of a batch into its memtable, a skip
 * list; rows in key order walk the same few nodes from one insert to the
 * next, where rows in hash-table order miss the cache at every level.
 * Measured on the 1M bench chain, that insert was the largest single cost
 * of a kept recount. The order need not be exact (any order is correct),
 * so keys are compared on their leading words only.
 */

/** The big-endian word at `b[p..p+4)`, with zeros past `n` (default: the end of `b`). */
export function wordAt(b: Uint8Array, p: number, n = b.length): number {
  if (p + 4 <= n) return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  let w = 0;
  for (let k = 0; k < 4; k++) w = (w << 8) | (p + k < n ? b[p + k]! : 0);
  return w >>> 0;
}

/**
 * An order of `n` rows, sorted by words given per row: call `start`, then
 * `by` once per word, least significant first (a stable radix sort, four
 * passes of a byte each). The arrays are reused from one spill to the next.
 */
export class RowOrder {
  order = new Uint32Array(1024);
  private tmp = new Uint32Array(1024);
  private readonly counts = new Uint32Array(256);
  private n = 0;

  /** Rows 0..n-1 in their own order. */
  start(n: number): Uint32Array {
    if (this.order.length < n) {
      const size = Math.max(n, 2 * this.order.length);
      this.order = new Uint32Array(size);
      this.tmp = new Uint32Array(size);
    }
    const order = this.order;
    for (let i = 0; i < n; i++) order[i] = i;
    this.n = n;
    return order;
  }

  /** Sorts the rows by `words[row]`, keeping the order of rows with equal words; `bytes`: how many low bytes the words use. Returns the order. */
  by(words: Uint32Array, bytes = 4): Uint32Array {
    for (let shift = 0; shift < 8 * bytes; shift += 8) this.pass(words, shift);
    return this.order;
  }

  private pass(words: Uint32Array, shift: number): void {
    const { n, counts } = this;
    const src = this.order;
    const dst = this.tmp;
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(words[src[i]!]! >>> shift) & 0xff]!++;
    let sum = 0;
    for (let d = 0; d < 256; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const row = src[i]!;
      dst[counts[(words[row]! >>> shift) & 0xff]!++] = row;
    }
    this.order = dst;
    this.tmp = src;
  }

  get byteSize(): number {
    return 8 * this.order.length;
  }
}
