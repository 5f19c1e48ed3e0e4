import { writeCompactSize, compactSizeLength } from '../../script/bytes.js';
import type { Coin } from '../types.js';

/** Core leaves scripts longer than this out of the UTXO-set hash (they are unspendable). */
export const MAX_SCRIPT_SIZE = 10_000;

/**
 * The UTXO-set hash element of one coin, serialized as Bitcoin Core's
 * `gettxoutsetinfo muhash` does: outpoint (txid, u32le vout), u32le
 * (height·2 + coinbase), i64le value, compactSize script length, script.
 * Returns null for coins Core leaves out.
 */
export function utxoElement(txid: Uint8Array, vout: number, coin: Coin): Buffer | null {
  const n = coin.script.length;
  if (n > MAX_SCRIPT_SIZE) return null;
  const b = Buffer.allocUnsafe(32 + 4 + 4 + 8 + compactSizeLength(n) + n);
  b.set(txid, 0);
  b.writeUInt32LE(vout, 32);
  b.writeUInt32LE(coin.height * 2 + (coin.coinbase ? 1 : 0), 36);
  b.writeBigInt64LE(coin.value, 40);
  const at = writeCompactSize(b, 48, n);
  b.set(coin.script, at);
  return b;
}

/** Core prints the digest as a uint256, i.e. byte-reversed. */
export function coreHex(digest: Uint8Array): string {
  return Buffer.from(digest).reverse().toString('hex');
}
