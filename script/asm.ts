import { OP_NEWNODE, OP_RENEWAL, OP_RETURN, parseScript } from './opcodes.js';

const NAMES: Record<number, string> = {
  0x00: 'OP_0', 0x4f: 'OP_1NEGATE', 0x50: 'OP_RESERVED', 0x61: 'OP_NOP',
  [OP_RETURN]: 'OP_RETURN', [OP_NEWNODE]: 'OP_NEWNODE', [OP_RENEWAL]: 'OP_RENEWAL',
  0x76: 'OP_DUP', 0x87: 'OP_EQUAL', 0x88: 'OP_EQUALVERIFY', 0xa9: 'OP_HASH160', 0xac: 'OP_CHECKSIG',
};

/**
 * A human-readable disassembly in the style of `bitcoin-cli decodescript`:
 * pushes as hex, small numbers as OP_N, and "[error]" where a push is cut off.
 */
export function toAsm(script: Uint8Array): string {
  const ops = parseScript(script);
  if (ops === null) return '[error]';
  return ops.map((op) => {
    if (op.opcode >= 0x51 && op.opcode <= 0x60) return `OP_${op.opcode - 0x50}`;
    if (op.opcode in NAMES) return NAMES[op.opcode]!;
    if (op.data !== null) return Buffer.from(op.data).toString('hex');
    return `OP_UNKNOWN_0x${op.opcode.toString(16).padStart(2, '0')}`;
  }).join(' ');
}
