/**
 * What can go wrong between the indexer and its node, as values: the error
 * type every RPC call rejects with, the node answers callers treat specially,
 * and the small formatters the client's messages use.
 */

import { redact } from '../redact.js';

/** `too-large`: the answer passed the client's size cap and was abandoned. */
export type RpcErrorKind = 'unreachable' | 'auth' | 'timeout' | 'http' | 'malformed' | 'too-large' | 'rpc';

/**
 * A failure talking to the node. `message` is one line meant for the user and
 * never holds credentials: it goes through {@link redact}, so even a node or
 * proxy that echoes them back cannot put them there.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly kind: RpcErrorKind;
  /** The JSON-RPC error code, for kind 'rpc'. */
  readonly code?: number;
  /** The node's own error text, for kind 'rpc'. */
  readonly nodeMessage?: string;
  /** Worth retrying: the node may answer differently in a moment. */
  readonly transient: boolean;

  constructor(kind: RpcErrorKind, message: string, opts: { transient: boolean; code?: number; nodeMessage?: string }) {
    super(redact(message));
    this.kind = kind;
    this.transient = opts.transient;
    if (opts.code !== undefined) this.code = opts.code;
    if (opts.nodeMessage !== undefined) this.nodeMessage = redact(opts.nodeMessage);
  }
}

/** What to tell the user when {@link RpcClient.getTxOutSetInfoMuhash} returns null. */
export const MUHASH_UNSUPPORTED =
  'the node cannot hash its UTXO set with MuHash (gettxoutsetinfo muhash needs Bitcoin Core ≥ 0.21)';

/** True when the node lacks `gettxoutsetinfo muhash`: no such method, no hash_type argument (Core < 0.21, bcoin), or unknown hash_type. */
export function isMuhashUnsupported(err: unknown): boolean {
  if (!(err instanceof RpcError) || err.kind !== 'rpc') return false;
  const msg = err.nodeMessage ?? '';
  return err.code === -32601
    || (err.code === -8 && /hash_type/i.test(msg))
    // Core < 0.21 and bcoin answer unexpected arguments with the usage text.
    || (err.code === -1 && /^gettxoutsetinfo\b/.test(msg));
}

/** True for bitcoind's answer to getblock of a block it has pruned. */
export function isPrunedBlock(err: unknown): boolean {
  return err instanceof RpcError && err.kind === 'rpc' && err.code === -1 && /pruned/i.test(err.nodeMessage ?? '');
}

export function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** The errno-style code behind a failed request: on the error itself, in its `cause`, or in an AggregateError when every address failed. */
export function socketCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; isObjectLike(e) && depth < 4; e = e.cause, depth++) {
    if (typeof e.code === 'string') return e.code;
    if (Array.isArray(e.errors) && isObjectLike(e.errors[0]) && typeof e.errors[0].code === 'string') return e.errors[0].code;
  }
  return undefined;
}
function isObjectLike(v: unknown): v is { code?: unknown; cause?: unknown; errors?: unknown; name?: unknown } {
  return typeof v === 'object' && v !== null;
}

/** One line of a non-JSON body, enough to recognise a proxy page or bitcoind's "Work queue depth exceeded". */
export function snippet(text: string): string {
  const line = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}
