/*
 * Recognising a private key by its shape alone. Kept apart from keys.ts, which
 * loads the signing libraries, so that flag checks can use it for free.
 */

/** Base58 WIF: 51 or 52 characters (uncompressed / compressed keys). */
const WIF_SHAPE = /^[1-9A-HJ-NP-Za-km-z]{51,52}$/;

/** Whether a command-line value looks like a private key; such values are never echoed. */
export function looksLikeWif(value: string): boolean {
  return WIF_SHAPE.test(value.trim());
}
