/**
 * An independent reference for recount results: a deliberately naive replay
 * of docs/spec.md §2.3–2.4 over raw blocks (bitcoinjs-lib parses them), using
 * only the project's decoder and interpreter.
 */
import { Block } from 'bitcoinjs-lib';
import type { MinedBlock } from '../../fixtures/generator/chain.js';
import { detectAnnouncement } from '../../script/carrier.js';
import { interpret, isLive, judgeAttempts, type RegistrationView } from '../../script/interpreter.js';
import { BUILTIN_NETWORKS, type NetworkParams } from '../../script/params.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const toRpc = (h: Uint8Array): string => Buffer.from(h).reverse().toString('hex');

export interface Replay {
  /** `txid:vout` of every announcement attempt → 'accepted' or its reason code. */
  outcomes: Map<string, string>;
  /** Stake script hex → `expired@h` or `lapsed@h`, for registrations that ended. */
  ended: Record<string, string>;
  /** Stake scripts hex of live registrations. */
  live: string[];
  /** Balance at the tip of every script that ever registered. */
  balances: Map<string, bigint>;
}

interface SimReg extends RegistrationView {
  tipTxid: Uint8Array;
  timestamp: number;
  expiryHeight: number;
  ended: boolean;
}

/**
 * A deliberately naive replay of docs/spec.md §2.3–2.4 over raw blocks, using the
 * project's decoder and interpreter, to check the scenario's bookkeeping.
 */
export function replayRegistry(chain: readonly MinedBlock[], params: NetworkParams = BUILTIN_NETWORKS.regtest!): Replay {
  const coins = new Map<string, { script: string; value: bigint }>();
  const balance = new Map<string, bigint>();
  const regs = new Map<string, SimReg>();
  const outcomes = new Map<string, string>();
  const ended: Record<string, string> = {};
  const add = (s: string, v: bigint): void => { balance.set(s, (balance.get(s) ?? 0n) + v); };
  for (const mb of chain.slice(1)) {
    const block = Block.fromBuffer(mb.raw);
    block.transactions!.forEach((tx, index) => {
      const txid = tx.getId();
      const spent = new Set<string>();
      if (index > 0) {
        for (const i of tx.ins) {
          const k = `${toRpc(i.hash)}:${i.index}`;
          const c = coins.get(k)!;
          coins.delete(k);
          add(c.script, -c.value);
          spent.add(c.script);
        }
      }
      tx.outs.forEach((o, vout) => {
        if (o.script[0] === 0x6a) return;
        coins.set(`${txid}:${vout}`, { script: hex(o.script), value: o.value });
        add(hex(o.script), o.value);
      });
      const attempts = tx.outs.flatMap((o, vout) => {
        const attempt = detectAnnouncement(o.script);
        return attempt ? [{ vout, attempt }] : [];
      });
      for (const j of judgeAttempts(attempts)) {
        const key = `${txid}:${j.vout}`;
        if (j.reason !== null) {
          outcomes.set(key, j.reason);
          continue;
        }
        const a = j.announcement;
        const s = hex(a.stakeScript);
        const verdict = interpret(a, {
          height: mb.height, blockTime: block.timestamp, isCoinbase: index === 0,
          spendsScript: (script) => spent.has(hex(script)),
          balanceAfter: (script) => balance.get(hex(script)) ?? 0n,
          registration: (script) => regs.get(hex(script)) ?? null,
        }, params);
        outcomes.set(key, verdict.accepted ? 'accepted' : verdict.reason);
        if (!verdict.accepted) continue;
        regs.set(s, { tipTxid: tx.getHash(), timestamp: a.timestamp, expiryHeight: mb.height + params.expiryBlocks, ended: false });
        delete ended[s];
      }
    });
    for (const [s, r] of regs) {
      if (!r.ended && r.expiryHeight <= mb.height) {
        r.ended = true;
        ended[s] = `expired@${mb.height}`;
      }
    }
    for (const [s, r] of regs) {
      if (isLive(r, mb.height) && (balance.get(s) ?? 0n) < params.minStake) {
        r.ended = true;
        ended[s] = `lapsed@${mb.height}`;
      }
    }
  }
  const balances = new Map([...regs.keys()].map((s) => [s, balance.get(s) ?? 0n]));
  return { outcomes, ended, live: [...regs].filter(([, r]) => !r.ended).map(([s]) => s), balances };
}
