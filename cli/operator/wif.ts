/*
 * Recognising a private key by its shape alone. The rule lives with the
 * address parser (script/address.ts), which must not echo keys either; this
 * module keeps it importable without the signing libraries.
 */
export { looksLikeWif } from '../../script/address.js';
