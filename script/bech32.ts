/*
 * Segwit addresses written out: bech32 (BIP 173) for witness version 0,
 * bech32m (BIP 350) above. Decoding stays with the bech32 library (see
 * address.ts). The encoder is here because a payout table or an export
 * renders an address per row, and
 * the library's character-by-character `+=` costs more than the rest of such
 * an answer; this one fills a small byte buffer and reads it back as one flat
 * string. test/address.test.ts holds it to the library on random programs.
 */

const CHARSET = Buffer.from('qpzry9x8gf2tvdw0s3jn54khce6mua7l', 'latin1');
/** The checksum constants XORed in at the end: BIP 173 for version 0, BIP 350 above. */
const BECH32 = 1;
const BECH32M = 0x2bc830a3;
/** An address longer than this is not bech32. */
const LIMIT = 90;

function polymodStep(pre: number): number {
  const b = pre >> 25;
  return (((pre & 0x1ffffff) << 5)
    ^ (-((b >> 0) & 1) & 0x3b6a57b2)
    ^ (-((b >> 1) & 1) & 0x26508e6d)
    ^ (-((b >> 2) & 1) & 0x1ea119fa)
    ^ (-((b >> 3) & 1) & 0x3d4233dd)
    ^ (-((b >> 4) & 1) & 0x2a1462b3));
}

/** The checksum state after the expanded human-readable part, or null when it has a character bech32 does not allow. */
function prefixState(hrp: string): number | null {
  let chk = 1;
  for (let i = 0; i < hrp.length; i++) {
    const c = hrp.charCodeAt(i);
    if (c < 33 || c > 126) return null;
    chk = polymodStep(chk) ^ (c >> 5);
  }
  chk = polymodStep(chk);
  for (let i = 0; i < hrp.length; i++) chk = polymodStep(chk) ^ (hrp.charCodeAt(i) & 0x1f);
  return chk;
}

const prefixes = new Map<string, number | null>();
const out = Buffer.alloc(LIMIT);

/**
 * The address of witness `version` (0..16) and `program` under the
 * human-readable part `hrp` (lower-cased), or null when no bech32 string can
 * carry them (a prefix character outside 33..126, or over 90 characters).
 */
export function segwitAddress(hrp: string, version: number, program: Uint8Array): string | null {
  const prefix = hrp.toLowerCase();
  let start = prefixes.get(prefix);
  if (start === undefined) {
    start = prefixState(prefix);
    prefixes.set(prefix, start);
  }
  const length = prefix.length + 1 + 1 + Math.ceil((program.length * 8) / 5) + 6;
  if (start === null || length > LIMIT || version < 0 || version > 16) return null;
  let at = out.write(prefix, 0, 'latin1');
  out[at++] = 0x31; // '1'
  let chk = polymodStep(start) ^ version;
  out[at++] = CHARSET[version]!;
  // The program regrouped from 8-bit bytes into 5-bit words, the last one padded with zero bits.
  let value = 0;
  let bits = 0;
  for (let i = 0; i <= program.length; i++) {
    if (i < program.length) {
      value = ((value << 8) | program[i]!) & 0xfff;
      bits += 8;
    } else if (bits > 0) {
      value <<= 5 - bits;
      bits = 5;
    }
    while (bits >= 5) {
      bits -= 5;
      const x = (value >> bits) & 31;
      chk = polymodStep(chk) ^ x;
      out[at++] = CHARSET[x]!;
    }
  }
  for (let i = 0; i < 6; i++) chk = polymodStep(chk);
  chk ^= version === 0 ? BECH32 : BECH32M;
  for (let i = 0; i < 6; i++) out[at++] = CHARSET[(chk >> ((5 - i) * 5)) & 31]!;
  return out.toString('latin1', 0, at);
}
