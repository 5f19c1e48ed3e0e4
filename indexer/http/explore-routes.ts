import type { FastifyInstance } from 'fastify';
import { AddressError, parseStake } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { REASON_CODES } from '../../script/reasons.js';
import type { DataSource } from '../read/source.js';
import { HttpError } from './errors.js';
import * as S from './schemas.js';

/*
 * The routes the dashboard's explorer views read besides the core API:
 * search across the registry, a stake's balance over time and the rejected
 * announcements. Kept apart from routes.ts; each reads one consistent view.
 */

const errors = { 400: S.ref(S.errorSchema), 404: S.ref(S.errorSchema) };

const searchQuery = {
  type: 'object', additionalProperties: false, required: ['q'],
  properties: {
    q: { type: 'string', minLength: 1, maxLength: 120, description: 'part of an address or of a stake script in hex, any case' },
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
  },
} as const;

const searchResponse = {
  $id: 'SearchResult', type: 'object', required: ['height', 'nodes', 'more'],
  properties: {
    height: { type: 'integer' },
    nodes: { type: 'array', items: S.ref(S.listedNodeSchema) },
    more: { type: 'boolean', description: 'more registrations match than were returned' },
  },
} as const;

const balancesQuery = {
  type: 'object', additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 } },
} as const;

const balancesResponse = {
  $id: 'BalanceHistory', type: 'object', required: ['height', 'stakeScript', 'points', 'truncated'],
  properties: {
    height: { type: 'integer' },
    stakeScript: { type: 'string' },
    points: {
      type: 'array',
      items: { type: 'object', required: ['height', 'balance'], properties: { height: { type: 'integer' }, balance: { type: 'string', description: 'base units at the end of the block' } } },
    },
    truncated: { type: 'boolean', description: 'older changes were left out (raise limit)' },
  },
} as const;

const rejectedQuery = {
  type: 'object', additionalProperties: false,
  properties: {
    reason: { type: 'string', enum: REASON_CODES },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    cursor: { type: 'string', maxLength: 64 },
  },
} as const;

const rejectedResponse = {
  $id: 'RejectedPage', type: 'object', required: ['height', 'rejected', 'nextCursor'],
  properties: {
    height: { type: 'integer' },
    rejected: {
      type: 'array',
      items: {
        type: 'object', required: ['txid', 'height', 'vout', 'kind', 'reason', 'reasonText'],
        properties: {
          txid: { type: 'string' }, height: { type: 'integer' }, vout: { type: 'integer' },
          kind: { type: ['string', 'null'], enum: ['newnode', 'renewal', null] },
          reason: { type: 'string' }, reasonText: { type: 'string' },
        },
      },
    },
    nextCursor: { type: ['string', 'null'] },
  },
} as const;

const stakeRejectedResponse = {
  $id: 'StakeRejections', type: 'object', required: ['height', 'stakeScript', 'recorded', 'rejected'],
  properties: {
    height: { type: 'integer' },
    stakeScript: { type: 'string' },
    recorded: { type: 'boolean', description: 'false for an index created before rejections were kept by stake: the list may miss some' },
    rejected: rejectedResponse.properties.rejected,
  },
} as const;

export const EXPLORE_SCHEMAS = [searchResponse, balancesResponse, rejectedResponse, stakeRejectedResponse];

function stakeScript(input: string, params: NetworkParams): Buffer {
  try {
    return parseStake(input, params);
  } catch (err) {
    if (err instanceof AddressError) throw new HttpError(400, 'bad_address', `params/stake: ${err.message}`);
    throw err;
  }
}

/** Searches running at once; more get a 503 (a search may read every registration). */
const MAX_SEARCHES = 2;

/** The explorer views, from whichever store `source` reads: the index or its PostgreSQL mirror. */
export function registerExploreRoutes(app: FastifyInstance, source: DataSource, params: NetworkParams): void {
  let searching = 0;
  app.get<{ Querystring: { q: string; limit: number } }>('/v1/search', {
    schema: { operationId: 'searchNodes', summary: 'Registrations whose address or stake script contains a text, across the whole registry', querystring: searchQuery, response: { 200: S.ref(searchResponse), ...errors, 503: S.ref(S.errorSchema) } },
  }, async (req) => {
    if (searching >= MAX_SEARCHES) throw new HttpError(503, 'busy', `${MAX_SEARCHES} searches are already running; retry in a moment`);
    searching++;
    try {
      return await source.read((r) => r.search(req.query.q, req.query.limit));
    } finally {
      searching--;
    }
  });

  app.get<{ Params: { stake: string }; Querystring: { limit: number } }>('/v1/nodes/:stake/balances', {
    schema: { operationId: 'getNodeBalances', summary: 'A stake\'s balance at the end of each block that changed it while registered', params: S.stakeParams, querystring: balancesQuery, response: { 200: S.ref(balancesResponse), ...errors } },
  }, async (req) => {
    const script = stakeScript(req.params.stake, params);
    const answer = await source.read((r) => r.balanceHistory(script, req.query.limit));
    return { height: answer.height, stakeScript: script.toString('hex'), points: answer.points, truncated: answer.truncated };
  });

  app.get<{ Params: { stake: string } }>('/v1/nodes/:stake/rejected', {
    schema: { operationId: 'getNodeRejections', summary: 'The rejected announcement attempts that named a stake, oldest first', params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.ref(stakeRejectedResponse), ...errors } },
  }, async (req) => {
    const script = stakeScript(req.params.stake, params);
    const answer = await source.read((r) => r.stakeRejections(script));
    return { height: answer.height, stakeScript: script.toString('hex'), recorded: answer.recorded, rejected: answer.rejected };
  });

  app.get<{ Querystring: { reason?: string; limit: number; cursor?: string } }>('/v1/rejected', {
    schema: { operationId: 'listRejected', summary: 'Rejected announcement attempts, newest first, optionally of one reason', querystring: rejectedQuery, response: { 200: S.ref(rejectedResponse), ...errors } },
  }, async (req) => source.read((r) => r.rejectedPage(req.query)));
}
