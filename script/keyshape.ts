/*
 * Recognising a private key by its shape alone, so that no error message or
 * log echoes one. Kept apart from the address parser (address.ts, which uses
 * it too) so that the CLI can check its arguments without loading the
 * address libraries.
 */

/** Base58 WIF: 51 or 52 characters (uncompressed / compressed keys). */
const WIF_SHAPE = /^[1-9A-HJ-NP-Za-km-z]{51,52}$/;

/** Whether a value looks like a private key by its shape alone; such values are never echoed. */
export function looksLikeWif(value: string): boolean {
  return WIF_SHAPE.test(value.trim());
}

/** The value as error messages may show it: quoted, unless it may be a private key. */
export function shown(value: string): string {
  return looksLikeWif(value) ? 'the value (not shown: it looks like a private key)' : `"${value}"`;
}
