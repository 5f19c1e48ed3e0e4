import { OP_0, OP_1, OP_CHECKSIG, OP_DUP, OP_EQUAL, OP_EQUALVERIFY, OP_HASH160 } from './opcodes.js';

export type StakeTemplate = 'p2pkh' | 'p2sh' | 'p2wpkh' | 'p2wsh' | 'p2tr';

/**
 * Names the standard template an output script matches byte for byte, or
 * null. Only these five can be stakes: they are what wallets fund and spend,
 * and each maps to exactly one address.
 */
export function stakeTemplate(s: Uint8Array): StakeTemplate | null {
  switch (s.length) {
    case 25:
      return s[0] === OP_DUP && s[1] === OP_HASH160 && s[2] === 20 && s[23] === OP_EQUALVERIFY && s[24] === OP_CHECKSIG
        ? 'p2pkh' : null;
    case 23:
      return s[0] === OP_HASH160 && s[1] === 20 && s[22] === OP_EQUAL ? 'p2sh' : null;
    case 22:
      return s[0] === OP_0 && s[1] === 20 ? 'p2wpkh' : null;
    case 34:
      if (s[1] !== 32) return null;
      if (s[0] === OP_0) return 'p2wsh';
      if (s[0] === OP_1) return 'p2tr';
      return null;
    default:
      return null;
  }
}
