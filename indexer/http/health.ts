import type { FastifyInstance } from 'fastify';
import type { Indexer } from '../api.js';
import type { DataSource } from '../read/source.js';

/** The `sync` field of /v1/status. */
export type SyncState = 'synced' | 'catching-up' | 'not-following' | 'node-unreachable';

/** /health/ready answers 200 while the index is at most this many blocks behind the node. */
export const READY_LAG = 2;

/** How the index stands against the followed node; `tipHash` is the index tip in RPC hex. */
export function syncState(indexer: Indexer | null, tipHash: string | null): SyncState {
  if (!indexer) return 'not-following';
  if (!indexer.nodeContact().reachable) return 'node-unreachable';
  const node = indexer.nodeTip();
  return node && tipHash === node.hash ? 'synced' : 'catching-up';
}

export interface Readiness {
  readonly ready: boolean;
  readonly sync: SyncState;
  readonly tip: number | null;
  readonly nodeTip: number | null;
  /** Blocks behind the node; null when either tip is unknown or there is no node. */
  readonly lag: number | null;
  readonly reason: string;
}

/**
 * Ready means the answers are current: within READY_LAG blocks of a node
 * that answers. A static index (`nodereg serve`) has no node to lag behind
 * and is ready once it has a tip.
 */
export function readiness(sync: SyncState, tip: number | null, nodeTip: number | null): Readiness {
  const lag = tip !== null && nodeTip !== null ? Math.max(0, nodeTip - tip) : null;
  const base = { sync, tip, nodeTip, lag };
  if (tip === null) return { ...base, ready: false, reason: 'the index is empty' };
  if (sync === 'not-following') return { ...base, ready: true, reason: 'serving a static index' };
  if (sync === 'node-unreachable') return { ...base, ready: false, reason: 'the node does not answer' };
  if (lag === null) return { ...base, ready: false, reason: 'the node has not answered yet' };
  if (lag > READY_LAG) return { ...base, ready: false, reason: `${lag} blocks behind the node (ready within ${READY_LAG})` };
  return { ...base, ready: true, reason: lag === 0 ? 'synced' : `${lag} blocks behind the node (ready within ${READY_LAG})` };
}

/** Liveness and readiness probes for orchestrators and load balancers. */
export function registerHealth(app: FastifyInstance, source: DataSource, indexer: Indexer | null): void {
  const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;
  app.get('/health/live', { schema: { hide: true, querystring: noQuery } }, async () => ({ live: true }));
  app.get('/health/ready', { schema: { hide: true, querystring: noQuery } }, async (_req, reply) => {
    const tip = await source.read((v) => v.tip());
    const r = readiness(syncState(indexer, tip?.hash ?? null), tip?.height ?? null, indexer?.nodeTip()?.height ?? null);
    return reply.code(r.ready ? 200 : 503).send(r);
  });
}
