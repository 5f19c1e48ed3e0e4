/**
 * store/layout.ts is the one module that knows where a stored key keeps
 * what (issue: "no other module knows key shapes"). The readers it offers
 * must give back what `K` wrote, and no other source file may read a key by
 * byte offset.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { coinKeyOutpoint, K, outpoint, P, parse, prefixOf, regId, regIdParts } from '../indexer/store/layout.js';
import { ROOT } from './helpers/cli.js';

describe('store/layout.ts reads back what it writes', () => {
  it('a registration row gives its regId and both halves', () => {
    const k = K.registration(regId(812_345, 0xfffffffe));
    const row = parse.registration(k);
    expect(row.firstHeight).toBe(812_345);
    expect(row.firstIndex).toBe(0xfffffffe);
    expect(row.id.equals(regId(812_345, 0xfffffffe))).toBe(true);
    expect(regIdParts(row.id)).toEqual({ firstHeight: 812_345, firstIndex: 0xfffffffe });
  });

  it('a coin key gives its txid, vout and outpoint; an outpoint gives its txid and vout', () => {
    const txid = Buffer.alloc(32, 0).fill(0xab, 0, 16);
    const op = outpoint(txid, 70_000);
    const k = K.coin(op);
    expect(parse.coin(k)).toEqual({ txid, vout: 70_000 });
    expect(coinKeyOutpoint(k).equals(op)).toBe(true);
    expect(parse.outpoint(op)).toEqual({ txid, vout: 70_000 });
  });

  it('every key built by K begins with its prefix, and an empty key has none', () => {
    expect(prefixOf(K.coin(outpoint(Buffer.alloc(32), 1)))).toBe(P.coin);
    expect(prefixOf(K.registration(regId(1, 2)))).toBe(P.registration);
    expect(prefixOf(K.event(Buffer.from('0014', 'hex'), 5, 6, 1))).toBe(P.event);
    expect(prefixOf(Buffer.alloc(0))).toBeNull();
  });
});

/**
 * Reads of a variable named `k` or `key` by index or by offset. Each allowed
 * line is a key that is not a stored one, or a stored one shown, not parsed.
 */
const OFFSET_READ = /\b(k|key)(\[\d+\]|\.(subarray|slice|readUInt(8|16|32)BE|readBigUInt64BE|readUInt8)\()/;
const ALLOWED: Array<[string, string]> = [
  // The coin file's own entries (its page format), not LevelDB keys.
  ['indexer/store/coinfile.ts', 'buf.set(k.subarray(ka, ka + KEY), e)'],
  // A damaged snapshot row's first bytes, quoted in hex in the error.
  ['indexer/snapshot/load.ts', 'k.subarray(0, 12).toString(\'hex\')'],
  // A proof-tree key (SHA-256 of a stake script): its first byte names its subtree.
  ['indexer/engine/registry.ts', 'tops.set(k[0]!, key)'],
  // A log line's level and name, a string.
  ['indexer/log.ts', 'key.slice(0, sep)'],
];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('no module but store/layout.ts reads a key by byte offset', () => {
  it('finds no offset read of a key outside the layout module and the allowed lines', () => {
    const found: string[] = [];
    for (const file of [...sources(join(ROOT, 'indexer')), ...sources(join(ROOT, 'cli'))]) {
      const rel = relative(ROOT, file);
      if (rel === join('indexer', 'store', 'layout.ts')) continue;
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (!OFFSET_READ.test(line)) return;
        if (ALLOWED.some(([f, snippet]) => f === rel && line.includes(snippet))) return;
        found.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });

  it('the check catches the reads it is meant to catch', () => {
    expect(OFFSET_READ.test('const h = k.readUInt32BE(1);')).toBe(true);
    expect(OFFSET_READ.test('if (key[0] !== P.event) continue;')).toBe(true);
    expect(OFFSET_READ.test('from = k.subarray(1, 9);')).toBe(true);
    expect(OFFSET_READ.test('const { txid, vout } = parse.coin(k);')).toBe(false);
  });
});
