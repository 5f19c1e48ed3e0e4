/**
 * docs/spec.md is what the code cites: every citation must name a section
 * that exists, and the tables a reimplementation would copy from it (reason
 * codes with their storage bytes, network parameters) must be the code's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { REASON_CODES, reasonToByte } from '../script/reasons.js';
import { ROOT } from './helpers/cli.js';

const spec = readFileSync(join(ROOT, 'docs', 'spec.md'), 'utf8');
const sections = new Set([...spec.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map((m) => m[1]!));

/** Source and docs files of the checkout that may cite the spec. */
function citingFiles(): string[] {
  const out: string[] = [join(ROOT, 'README.md')];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|md|mjs|sh)$/.test(e.name)) out.push(p);
    }
  };
  for (const d of ['script', 'indexer', 'cli', 'bench', 'test', 'docs', 'tools', join('fixtures', 'generator')]) walk(join(ROOT, d));
  return out;
}

/** The rows of the markdown table that follows `heading` (a line of the spec). */
function tableAfter(heading: string): string[][] {
  const start = spec.indexOf(heading);
  expect(start).toBeGreaterThanOrEqual(0);
  const lines = spec.slice(start).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const l of lines.slice(first + 2)) {
    if (!l.startsWith('|')) break;
    rows.push(l.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

describe('docs/spec.md', () => {
  test('has the sections the code cites, numbered as they are cited', () => {
    expect([...sections]).toEqual(expect.arrayContaining(['1', '2', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6', '2.7', '2.8', '2.9', '2.10', '3', '4']));
  });

  test('every "spec §x" citation in the code and the docs names one of its sections', () => {
    const cited: string[] = [];
    const missing: string[] = [];
    for (const file of citingFiles()) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/spec(?:\.md)?,? §(\d+(?:\.\d+)?)/g)) {
        cited.push(m[1]!);
        if (!sections.has(m[1]!)) missing.push(`${file.slice(ROOT.length + 1)}: §${m[1]}`);
      }
    }
    expect(cited.length).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });

  test('lists every reason code with its storage byte, in the code\'s order', () => {
    const rows = tableAfter('**Reason codes.**').map(([n, code]) => [Number(n), code!.replace(/`/g, '')]);
    expect(rows).toEqual(REASON_CODES.map((c) => [reasonToByte(c), c]));
  });

  test('states the built-in networks\' protocol values and magics as the code has them', () => {
    const protocol = Object.fromEntries(tableAfter('### 2.5 Network parameters').map((r) => [r[0]!.replace(/`/g, ''), r.slice(1)]));
    const number = (cell: string): number => Number(cell.replace(/\(.*\)/, '').replace(/\s/g, ''));
    for (const [name, p] of Object.entries(BUILTIN_NETWORKS)) {
      const col = name === 'regtest' ? 1 : 0;
      expect([number(protocol['minStake (base units)']![col]!), number(protocol.expiryBlocks![col]!),
        number(protocol['futureTolerance (s)']![col]!), number(protocol['staleWindow (s)']![col]!)])
        .toEqual([Number(p.minStake), p.expiryBlocks, p.futureTolerance, p.staleWindow]);
    }
    const chains = tableAfter('Beside the protocol values');
    const byName = Object.fromEntries(chains.map((r) => [r[0]!.split(' ')[0]!, r.slice(1).map((c) => c.replace(/`/g, ''))]));
    for (const [name, p] of Object.entries(BUILTIN_NETWORKS)) {
      const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;
      expect(byName[name]).toEqual([p.magic, p.bech32, hex(p.pubKeyHash), hex(p.scriptHash), hex(p.wif)]);
    }
  });
});
