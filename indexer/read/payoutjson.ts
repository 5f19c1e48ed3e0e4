import type { PayoutTable } from './payouttypes.js';

/*
 * A payout table as JSON bytes, exactly `JSON.stringify(table, null, indent)`
 * in UTF-8, made a few hundred rows at a time. One call over 100 000 rows builds
 * a 13 MB string that V8 holds as a chain of pieces: encoding it then copies
 * it flat first, and the HTTP reply would walk it twice more (length, then
 * socket). Small pieces encode at once and are joined as bytes.
 */

/** Small enough that a piece's text stays in V8's young generation (objects over 128 KiB get fresh pages of their own). */
const ROWS_PER_PIECE = 400;

/** `JSON.stringify(table)` (indent 0) or `JSON.stringify(table, null, 2)` (indent 2), as UTF-8. */
export function payoutTableJson(table: PayoutTable, indent: 0 | 2 = 0): Buffer {
  return Buffer.concat(payoutTableJsonPieces(table, indent));
}

/** `payoutTableJson` in consecutive pieces, for a writer that need not join them (a file, a pipe). */
export function payoutTableJsonPieces(table: PayoutTable, indent: 0 | 2 = 0): Buffer[] {
  const rows = table.payouts;
  if (rows.length === 0) return [Buffer.from(JSON.stringify(table, null, indent))];
  const { from, to, amount, weight, payoutsHash } = table;
  const nl = indent === 0 ? '' : '\n';
  // The members up to the rows' opening bracket: the text of the same object with no rows, cut before its `[]`.
  const head = JSON.stringify({ from, to, amount, weight, payouts: [] }, null, indent);
  const pieces = [Buffer.from(head.slice(0, head.lastIndexOf('[]') + 1) + nl)];
  for (let i = 0; i < rows.length; i += ROWS_PER_PIECE) {
    // An array's text without its brackets, one level deeper: indented twice as far when pretty.
    const text = JSON.stringify(rows.slice(i, i + ROWS_PER_PIECE), null, indent);
    if (i > 0) pieces.push(Buffer.from(`,${nl}`));
    if (indent === 0) pieces.push(Buffer.from(text).subarray(1, -1));
    else pieces.push(Buffer.from('  ' + text.slice(2, -2).replaceAll('\n', '\n  ')));
  }
  const tail = JSON.stringify({ payoutsHash }, null, indent);
  pieces.push(Buffer.from(`${nl}${indent === 0 ? '' : '  '}],${tail.slice(1)}`));
  return pieces;
}
