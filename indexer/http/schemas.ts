/**
 * JSON schemas of the read API. Fastify validates every query and path
 * parameter against them (unknown query parameters are errors, not ignored),
 * serializes responses with them, and the OpenAPI document is generated from
 * them, so the docs cannot drift from what the server does. Response shapes
 * have an `$id`: they are registered once (`SHARED_SCHEMAS`), routes refer
 * to them with `ref()`, and the OpenAPI document lists them by that name
 * under components.schemas.
 */
const hex64 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const height = { type: 'integer', minimum: 0, maximum: 4294967295 } as const;
const nullableInt = { type: ['integer', 'null'] } as const;

/** A reference to a shared schema by its `$id`. */
export const ref = (schema: { $id: string }): { $ref: string } => ({ $ref: `${schema.$id}#` });

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

const exportNodeFields = {
  type: 'object',
  required: ['stakeScript', 'address', 'status', 'firstHeight', 'firstTxid', 'tipHeight', 'tipTxid', 'timestamp', 'renewals', 'expiryHeight', 'endedHeight', 'balance'],
  properties: {
    stakeScript: { type: 'string', description: 'output script, hex' },
    address: { type: ['string', 'null'] },
    status: { type: 'string', enum: ['active', 'expired', 'lapsed'] },
    firstHeight: { type: 'integer' },
    firstTxid: hex64,
    tipHeight: { type: 'integer' },
    tipTxid: hex64,
    timestamp: { type: 'integer' },
    renewals: { type: 'integer' },
    expiryHeight: { type: 'integer' },
    endedHeight: nullableInt,
    balance: { type: 'string', description: 'base units, decimal' },
  },
} as const;

export const exportNodeSchema = { $id: 'ExportNode', ...exportNodeFields } as const;

const listedNodeFields = {
  ...exportNodeFields,
  required: [...exportNodeFields.required, 'age', 'blocksUntilExpiry', 'expiresAt', 'renewBy', 'stakeMargin'],
  properties: {
    ...exportNodeFields.properties,
    age: { type: 'integer', description: 'blocks since firstHeight' },
    blocksUntilExpiry: { ...nullableInt, description: 'expiryHeight − height while active, else null' },
    expiresAt: { ...nullableInt, description: 'estimated unix time of block expiryHeight (median interval of the last 144 blocks); null once ended' },
    renewBy: { ...nullableInt, description: 'the last height whose renewal keeps the node live without a gap (expiryHeight − 1); null once ended' },
    stakeMargin: { type: 'string', description: 'balance − minStake, base units, decimal (negative below the stake)' },
  },
} as const;

export const listedNodeSchema = { $id: 'ListedNode', ...listedNodeFields } as const;

export const rejectedSchema = {
  $id: 'Rejected',
  type: 'object',
  required: ['txid', 'height', 'vout', 'reason'],
  properties: { txid: hex64, height: { type: 'integer' }, vout: { type: 'integer' }, reason: { type: 'string', description: 'reason code (docs/protocol.md)' } },
} as const;

export const exportSchema = {
  $id: 'Export',
  type: 'object',
  required: ['network', 'height', 'tip', 'root', 'nodes', 'rejected'],
  properties: {
    network: { type: 'string' },
    height: { type: 'integer' },
    tip: hex64,
    root: hex64,
    nodes: { type: 'array', items: ref(exportNodeSchema) },
    rejected: { type: 'array', items: ref(rejectedSchema) },
  },
} as const;

const tipSchema = { type: ['object', 'null'], required: ['height', 'hash'], properties: { height: { type: 'integer' }, hash: hex64 } } as const;

export const statusSchema = {
  $id: 'Status',
  type: 'object',
  required: ['network', 'paramsHash', 'schemaVersion', 'tip', 'nodeTip', 'sync', 'lastNodeContact', 'counts', 'utxoMuhash'],
  properties: {
    network: { type: 'string' },
    paramsHash: hex64,
    schemaVersion: { type: 'integer' },
    params: {
      type: 'object',
      description: 'the network params the index was built with, as a --params file holds them (so clients need no file)',
      additionalProperties: { type: ['string', 'integer'] },
    },
    tip: tipSchema,
    nodeTip: { ...tipSchema, description: 'the followed node\'s best block; null when not following' },
    sync: { type: 'string', enum: ['synced', 'catching-up', 'not-following', 'node-unreachable'] },
    lastNodeContact: { type: ['string', 'null'], format: 'date-time', description: 'when the followed node last answered RPC; null when not following or before its first answer' },
    counts: {
      type: 'object',
      description: 'each stake\'s current registration at the tip, by status',
      required: ['active', 'expired', 'lapsed'],
      properties: { active: { type: 'integer' }, expired: { type: 'integer' }, lapsed: { type: 'integer' } },
    },
    utxoMuhash: { type: ['string', 'null'], description: 'Core gettxoutsetinfo muhash at the tip, when the index keeps it' },
  },
} as const;

export const nodesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['active', 'expired', 'lapsed', 'all'], default: 'active' },
    at: height,
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    cursor: { type: 'string', maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' },
    expiringWithin: { type: 'integer', minimum: 0, maximum: 4294967295, description: 'only active nodes that expire within this many blocks (blocksUntilExpiry ≤ N)' },
  },
} as const;

export const nodesResponse = {
  $id: 'NodePage',
  type: 'object',
  required: ['height', 'nodes', 'nextCursor'],
  properties: { height: { type: 'integer' }, nodes: { type: 'array', items: ref(listedNodeSchema) }, nextCursor: { type: ['string', 'null'] } },
} as const;

export const stakeParams = {
  type: 'object',
  required: ['stake'],
  properties: { stake: { type: 'string', minLength: 1, maxLength: 200, description: 'address, or output script hex' } },
} as const;

export const historyEntrySchema = {
  $id: 'HistoryEntry',
  type: 'object',
  required: ['event', 'height', 'txid', 'registration', 'timestamp', 'expiryHeight'],
  properties: {
    event: { type: 'string', enum: ['registered', 'renewed', 'expired', 'lapsed'] },
    height: { type: 'integer' },
    txid: { type: ['string', 'null'] },
    registration: { type: 'string', description: 'firstHeight:position of the registration the event belongs to' },
    timestamp: { type: 'integer' },
    expiryHeight: { type: 'integer' },
  },
} as const;

const historySchema = { type: 'array', items: ref(historyEntrySchema) } as const;

/** The same shape as `nodereg node --json` and the library's `Indexer.node()`. */
export const nodeResponse = {
  $id: 'Node',
  type: 'object',
  required: ['height', 'stakeScript', 'balance', 'registration', 'history'],
  properties: {
    height: { type: 'integer' },
    stakeScript: { type: 'string' },
    balance: { type: 'string' },
    registration: {
      type: ['object', 'null'],
      required: listedNodeFields.required,
      properties: listedNodeFields.properties,
    },
    history: historySchema,
  },
} as const;

export const historyResponse = {
  $id: 'History',
  type: 'object',
  required: ['height', 'stakeScript', 'history'],
  properties: { height: { type: 'integer' }, stakeScript: { type: 'string' }, history: historySchema },
} as const;

export const txParams = {
  type: 'object',
  required: ['txid'],
  properties: { txid: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' } },
} as const;

export const txResponse = {
  $id: 'TxOutcomes',
  type: 'object',
  required: ['txid', 'announcements'],
  properties: {
    txid: hex64,
    announcements: {
      type: 'array',
      items: {
        type: 'object',
        required: ['vout', 'height', 'kind', 'accepted', 'reason'],
        properties: {
          vout: { type: 'integer' }, height: { type: 'integer' },
          kind: { type: ['string', 'null'], enum: ['newnode', 'renewal', null] },
          accepted: { type: 'boolean' }, reason: { type: ['string', 'null'] },
        },
      },
    },
  },
} as const;

export const heightQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { height },
} as const;

export const rootResponse = {
  $id: 'Root',
  type: 'object',
  required: ['height', 'tip', 'root', 'proofRoot', 'utxoMuhash'],
  properties: {
    height: { type: 'integer' }, tip: hex64, root: hex64,
    proofRoot: { ...hex64, description: 'root of the proof tree (docs/spec.md §2.9)' }, utxoMuhash: { type: ['string', 'null'] },
  },
} as const;

export const proofResponse = {
  $id: 'Proof',
  type: 'object',
  description: 'A proof that a stake is live at a height, or that it is not (docs/spec.md §2.9); check it with verifyProof (nodereg/verify)',
  required: ['height', 'tip', 'proofRoot', 'stakeScript', 'key', 'included', 'element', 'siblings', 'other'],
  properties: {
    height: { type: 'integer' }, tip: hex64, proofRoot: hex64,
    stakeScript: { type: 'string', description: 'output script, hex' },
    key: { ...hex64, description: 'SHA256(stakeScript)' },
    included: { type: 'boolean' },
    element: { type: ['string', 'null'], description: 'the registration as its root element (docs/spec.md §2.6), hex; null when excluded' },
    siblings: { type: 'array', items: hex64, description: 'sibling hashes along the key\'s path, top first' },
    other: {
      type: ['object', 'null'], description: 'the other leaf where an exclusion\'s path ends, or null',
      required: ['key', 'valueHash'], properties: { key: hex64, valueHash: hex64 },
    },
  },
} as const;

export const diffQuery = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to'],
  properties: { from: height, to: height },
} as const;

const diffEnd = {
  type: 'object',
  required: ['height', 'tip', 'root', 'proofRoot'],
  properties: { height: { type: 'integer' }, tip: hex64, root: hex64, proofRoot: hex64 },
} as const;

export const diffResponse = {
  $id: 'Diff',
  type: 'object',
  required: ['from', 'to', 'added', 'removed', 'changed'],
  properties: {
    from: diffEnd,
    to: diffEnd,
    added: { type: 'array', items: ref(exportNodeSchema), description: 'live at `to`, not at `from`' },
    removed: { type: 'array', items: { type: 'string' }, description: 'stake scripts (hex) live at `from`, not at `to`' },
    changed: { type: 'array', items: ref(exportNodeSchema), description: 'live at both, with another root element at `to`' },
  },
} as const;

export const payoutsQuery = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to'],
  properties: {
    from: height,
    to: height,
    minAge: { type: 'integer', minimum: 0, maximum: 4294967295, description: 'without `amount`: minimum age at `from`, in blocks (default 0)' },
    amount: { type: 'string', pattern: '^[0-9]{1,40}$', description: 'total to pay, base units (a decimal string above 0): answers the payout table of docs/spec.md §2.10' },
    weight: { type: 'string', enum: ['uptime', 'age'], description: 'with `amount`: how live heights are weighted (default uptime)' },
    minPayout: { type: 'string', pattern: '^[0-9]{1,40}$', description: 'with `amount`: shares below this many base units are dust (default 546)' },
  },
} as const;

export const payoutTableResponse = {
  $id: 'PayoutTable',
  type: 'object',
  required: ['from', 'to', 'amount', 'weight', 'payouts', 'payoutsHash'],
  properties: {
    from: { type: 'integer' },
    to: { type: 'integer' },
    amount: { type: 'string', description: 'base units, decimal' },
    weight: { type: 'string', enum: ['uptime', 'age'] },
    payouts: {
      type: 'array',
      description: 'recipients in FIRST_SEEN order of their earliest registration live in the window',
      items: {
        type: 'object',
        required: ['stakeScript', 'address', 'weight', 'amount'],
        properties: {
          stakeScript: { type: 'string' }, address: { type: ['string', 'null'] }, weight: { type: 'integer' },
          amount: { type: 'string', description: 'base units, decimal' },
        },
      },
    },
    payoutsHash: { ...hex64, description: 'SHA256 of the minified [{stakeScript, weight, amount}] table (docs/spec.md §2.10)' },
  },
} as const;

export const payoutsResponse = {
  $id: 'Payouts',
  type: 'object',
  required: ['from', 'to', 'nodes'],
  properties: {
    from: { type: 'integer' },
    to: { type: 'integer' },
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['stakeScript', 'address', 'firstHeight', 'age', 'renewals'],
        properties: {
          stakeScript: { type: 'string' }, address: { type: ['string', 'null'] }, firstHeight: { type: 'integer' },
          age: { type: 'integer' }, renewals: { type: 'integer' },
        },
      },
    },
  },
} as const;

export const utxosResponse = {
  $id: 'Utxos',
  type: 'object',
  required: ['height', 'utxos'],
  properties: {
    height: { type: 'integer' },
    utxos: {
      type: 'array',
      items: {
        type: 'object',
        required: ['txid', 'vout', 'value', 'height', 'coinbase'],
        properties: { txid: hex64, vout: { type: 'integer' }, value: { type: 'string' }, height: { type: 'integer' }, coinbase: { type: 'boolean' } },
      },
    },
  },
} as const;

export const eventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { lastEventId: { type: 'integer', minimum: 0, description: 'same as the Last-Event-ID header' } },
} as const;

export const activeQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { ...height, description: 'first height (default 0)' },
    to: { ...height, description: 'last height (default: the tip)' },
    points: { type: 'integer', minimum: 2, maximum: 1000, default: 200, description: 'how many heights to sample' },
  },
} as const;

export const activeResponse = {
  $id: 'ActiveHistory',
  type: 'object',
  required: ['from', 'to', 'points'],
  properties: {
    from: { type: 'integer' },
    to: { type: 'integer' },
    points: {
      type: 'array',
      items: {
        type: 'object',
        required: ['height', 'active'],
        properties: { height: { type: 'integer' }, active: { type: 'integer', description: 'registrations active at the end of this block' } },
      },
    },
  },
} as const;

export const emptyQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

/** The named response shapes, in dependency order, for `app.addSchema`. */
export const SHARED_SCHEMAS = [
  errorSchema, exportNodeSchema, listedNodeSchema, rejectedSchema, exportSchema, statusSchema, nodesResponse, historyEntrySchema,
  nodeResponse, historyResponse, txResponse, rootResponse, payoutsResponse, payoutTableResponse, utxosResponse, activeResponse, proofResponse, diffResponse,
] as const;
