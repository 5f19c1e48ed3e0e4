/*
 * Recognising a private key by its shape alone. The rule lives in
 * script/keyshape.ts, shared with the address parser, which must not echo
 * keys either; this module keeps it importable without the signing libraries.
 */
export { looksLikeWif } from '../../script/keyshape.js';
