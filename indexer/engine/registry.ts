import type { Announcement } from '../../script/carrier.js';
import type { RegistrationView } from '../../script/interpreter.js';
import type { ReasonCode } from '../../script/reasons.js';
import { proofLeaf } from '../../script/prooftree.js';
import { END_OF_BLOCK, EVENT_KINDS, encodeEvent, encodeOutcome, encodeProofLeaf, encodeRegistration, encodeRejected, encodeSubtree, KEY_ONLY_VALUE, rootElement } from '../store/codec.js';
import { K, OPEN, PROOF_SUBTREE_BITS, regId } from '../store/layout.js';
import { bkey, unbkey, type ChainState } from '../store/state.js';
import type { EventKind, Registration } from '../types.js';

/** A registry change made by one block, as reported to embedders and the event stream. */
export type BlockEvent =
  | { readonly type: 'registered' | 'renewed' | 'expired' | 'lapsed'; readonly stakeScript: Buffer; readonly txid: Buffer | null; readonly registration: Registration }
  | { readonly type: 'rejected'; readonly txid: Buffer; readonly vout: number; readonly reason: ReasonCode; readonly stakeScript: Buffer | null };

/**
 * Writes the registry rows of one block, remembering each row's value from
 * before the block the first time it is touched. That list is the registry
 * half of the block's undo record.
 */
export class RegistryWriter {
  readonly priors = new Map<string, Buffer | null>();
  readonly events: BlockEvent[] = [];
  /** Proof-tree keys (latin1) whose leaf the block added, changed or removed. */
  private readonly proofKeys = new Set<string>();

  constructor(private readonly state: ChainState, private readonly height: number) {}

  private write(key: Buffer, value: Buffer | null, prior: Buffer | null): void {
    const k = bkey(key);
    if (!this.priors.has(k)) this.priors.set(k, prior);
    this.state.putRow(key, value);
  }

  /** What the interpreter may know about the script's current registration. */
  view(script: Buffer): RegistrationView | null {
    const id = this.state.current.get(bkey(script));
    if (id === undefined) return null;
    const reg = this.state.open.get(id);
    if (!reg) return { tipTxid: Buffer.alloc(32), timestamp: 0, expiryHeight: 0, ended: true };
    return { tipTxid: reg.tipTxid, timestamp: reg.timestamp, expiryHeight: reg.expiryHeight, ended: false };
  }

  register(a: Announcement, txIndex: number, txid: Buffer): void {
    const h = this.height;
    const script = Buffer.from(a.stakeScript);
    const id = regId(h, txIndex);
    const idk = bkey(id);
    const reg: Registration = {
      stakeScript: script, firstHeight: h, firstIndex: txIndex, firstTxid: Buffer.from(txid),
      tipHeight: h, tipTxid: Buffer.from(txid), timestamp: a.timestamp, renewals: 0,
      expiryHeight: h + this.state.params.expiryBlocks, status: 'active', endedHeight: null,
    };
    const sk = bkey(script);
    const prior = this.state.current.get(sk);
    this.write(K.current(script), id, prior === undefined ? null : unbkey(prior));
    if (prior !== undefined) this.write(K.firstSeen(unbkey(prior)), null, script);
    this.write(K.firstSeen(id), script, null);
    this.write(K.registration(id), encodeRegistration(reg), null);
    this.write(K.expiry(reg.expiryHeight, id), KEY_ONLY_VALUE, null);
    this.write(K.lifetime(OPEN, id), script, null);
    this.event(reg, 'registered', txIndex, txid);
    this.goLive(reg);
    this.state.current.set(sk, idk);
    this.state.trackOpen(idk, reg);
  }

  renew(a: Announcement, txIndex: number, txid: Buffer): void {
    const idk = this.state.current.get(bkey(a.stakeScript))!;
    const { reg, id } = this.update(idk, (r) => {
      r.tipHeight = this.height;
      r.tipTxid = Buffer.from(txid);
      r.timestamp = a.timestamp;
      r.renewals += 1;
      r.expiryHeight = this.height + this.state.params.expiryBlocks;
    });
    this.write(K.expiry(reg.expiryHeight, id), KEY_ONLY_VALUE, null);
    this.event(reg, 'renewed', txIndex, txid);
    this.goLive(reg);
    this.state.trackOpen(idk, reg);
  }

  /** Ends an open registration at the end of this block. */
  end(idk: string, how: 'expired' | 'lapsed'): void {
    const { reg, id } = this.update(idk, (r) => {
      r.status = how;
      r.endedHeight = this.height;
    });
    this.write(K.lifetime(OPEN, id), null, reg.stakeScript);
    this.write(K.lifetime(this.height, id), reg.stakeScript, null);
    this.event(reg, how, END_OF_BLOCK, null);
  }

  /**
   * The part renewing and ending share: takes the open registration `idk` out
   * of the root, its expiry row and the open set, applies `change` to it and
   * rewrites its row (remembering the old one).
   */
  private update(idk: string, change: (reg: Registration) => void): { reg: Registration; id: Buffer } {
    const reg = this.state.open.get(idk)!;
    const id = unbkey(idk);
    this.leaveLive(reg);
    this.write(K.expiry(reg.expiryHeight, id), null, KEY_ONLY_VALUE);
    const before = encodeRegistration(reg);
    this.state.untrackOpen(idk, reg);
    change(reg);
    this.write(K.registration(id), encodeRegistration(reg), before);
    return { reg, id };
  }

  /** A registration's element joins both commitments to the live set: the registry root and the proof tree. */
  private goLive(reg: Registration): void {
    const e = rootElement(reg);
    this.state.root.insert(e);
    const leaf = proofLeaf(e);
    this.state.proofTree.insert(leaf.key, leaf.value);
    this.proofKeys.add(leaf.key);
  }

  /**
   * A registration's element leaves both commitments. The tree holds one leaf
   * per script, so a registration that ends in the block that replaced it
   * (an OP_NEWNODE at its expiry height) leaves its successor's leaf alone.
   */
  private leaveLive(reg: Registration): void {
    const e = rootElement(reg);
    this.state.root.remove(e);
    const { key, value } = proofLeaf(e);
    if (this.state.proofTree.get(key) === value) this.state.proofTree.remove(key);
    this.proofKeys.add(key);
  }

  /**
   * The proof-tree history of the block ('k' and 'n' rows, docs/schema.md):
   * each leaf the block touched as it is now, and each subtree at depth
   * PROOF_SUBTREE_BITS holding one of them, so that a proof at a past height
   * reads one subtree's leaves and the summaries of the others instead of
   * rebuilding the whole tree. Called once, after the block's last change.
   */
  proofHistory(): void {
    const tree = this.state.proofTree;
    const tops = new Map<number, string>();
    for (const key of this.proofKeys) {
      const k = Buffer.from(key, 'latin1');
      this.write(K.proofLeaf(k, this.height), encodeProofLeaf(tree.get(key)), null);
      tops.set(k[0]!, key);
    }
    for (const [top, key] of tops) this.write(K.proofSubtree(top, this.height), encodeSubtree(tree.subtree(key, PROOF_SUBTREE_BITS)), null);
  }

  outcome(txid: Buffer, txIndex: number, vout: number, a: Announcement | null, reason: ReasonCode | null): void {
    const h = this.height;
    this.write(K.outcome(txid, vout), encodeOutcome({ height: h, txIndex, vout, kind: a?.kind ?? null, reason }), null);
    if (reason !== null) {
      this.write(K.rejected(h, txIndex, vout), encodeRejected(txid, reason), null);
      // A decoded attempt names its stake: kept by stake too, for the stake's own history.
      if (a) this.write(K.stakeRejected(a.stakeScript, h, txIndex, vout), encodeRejected(txid, reason), null);
      this.events.push({ type: 'rejected', txid: Buffer.from(txid), vout, reason, stakeScript: a ? Buffer.from(a.stakeScript) : null });
    }
  }

  /** The block's header time, for estimating when registrations expire (renewal forecasts). */
  blockTime(time: number): void {
    const v = Buffer.allocUnsafe(4);
    v.writeUInt32LE(time >>> 0, 0);
    this.write(K.blockTime(this.height), v, null);
  }

  stakeBalance(script: Buffer, balance: bigint): void {
    const v = Buffer.allocUnsafe(8);
    v.writeBigUInt64LE(balance, 0);
    this.write(K.stakeBalance(script, this.height), v, null);
  }

  private event(reg: Registration, kind: EventKind, txIndex: number, txid: Buffer | null): void {
    const value = encodeEvent({
      kind, height: this.height, txIndex, firstHeight: reg.firstHeight, firstIndex: reg.firstIndex,
      txid, timestamp: reg.timestamp, expiryHeight: reg.expiryHeight,
    });
    this.write(K.event(reg.stakeScript, this.height, txIndex, EVENT_KINDS.indexOf(kind)), value, null);
    this.events.push({ type: kind, stakeScript: reg.stakeScript, txid: txid ? Buffer.from(txid) : null, registration: { ...reg } });
  }
}

export { rootElement };
