import { MUHASH_UNSUPPORTED, RpcError, type RpcClient } from '../node/rpc.js';
import { SnapshotLoadError } from './load.js';
import type { SnapshotHeader } from './format.js';

/*
 * What a node can confirm about a snapshot: that its tip is a block of the
 * node's main chain, and that its UTXO-set MuHash is the node's own at that
 * height (Core ≥ 0.21: at its tip always, at a past height with
 * -coinstatsindex). bcoin and older Cores cannot hash their UTXO set; that is
 * said, not hidden.
 */

export interface NodeCheck {
  /** The tip hash is the node's block at that height. */
  readonly tip: 'match';
  readonly muhash: 'match' | 'not-checked';
  /** Why the MuHash was not checked, or null. */
  readonly note: string | null;
}

/** Throws SnapshotLoadError when the node contradicts the header. */
export async function checkAgainstNode(rpc: RpcClient, header: SnapshotHeader): Promise<NodeCheck> {
  const info = await rpc.getBlockchainInfo();
  if (info.blocks < header.height) {
    throw new SnapshotLoadError(`the node is at height ${info.blocks}, below the snapshot's ${header.height}, so it cannot confirm the snapshot's tip; let it sync first, then load again`);
  }
  const hash = await rpc.getBlockHash(header.height);
  if (hash !== header.tip) {
    throw new SnapshotLoadError(`the snapshot's tip ${header.tip} is not in the node's main chain (its block at height ${header.height} is ${hash}): the snapshot follows another chain or a stale branch; use a snapshot of this node's chain`);
  }
  if (header.utxoMuhash === null) return { tip: 'match', muhash: 'not-checked', note: 'the snapshot carries no UTXO-set MuHash (its index was built without --utxo-hash)' };
  let answer;
  try {
    answer = await rpc.getTxOutSetInfoMuhash({}, header.height);
  } catch (err) {
    if (!(err instanceof RpcError && err.kind === 'rpc' && err.code === -8 && /coinstatsindex/i.test(err.nodeMessage ?? ''))) throw err;
    // No coinstatsindex: Core hashes only its current tip.
    if (info.blocks !== header.height) {
      return { tip: 'match', muhash: 'not-checked', note: `the node hashes its UTXO set only at its tip (height ${info.blocks}) without -coinstatsindex=1, and the snapshot is at ${header.height}` };
    }
    answer = await rpc.getTxOutSetInfoMuhash();
    if (answer !== null && answer.height !== header.height) {
      return { tip: 'match', muhash: 'not-checked', note: `the node moved to height ${answer.height} while it hashed its UTXO set` };
    }
  }
  if (answer === null) return { tip: 'match', muhash: 'not-checked', note: `could not check the UTXO-set MuHash: ${MUHASH_UNSUPPORTED}` };
  if (answer.bestblock !== header.tip || answer.muhash !== header.utxoMuhash) {
    throw new SnapshotLoadError(`the snapshot's UTXO-set MuHash ${header.utxoMuhash} differs from the node's ${answer.muhash} at height ${answer.height}: its coins are not the node's; do not use this snapshot`);
  }
  return { tip: 'match', muhash: 'match', note: null };
}
