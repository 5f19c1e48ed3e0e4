/**
 * The library surface of nodereg, for programs that embed it (explorers,
 * trackers, payment services). `import { openIndexer } from 'nodereg'`.
 */
export { openIndexer, Indexer, type IndexerOptions, type IndexerEvents, type RegistryChange, type RegistrationJson, type Rejection } from './api.js';
export { createApiServer, type ApiServerOptions } from './http/embed.js';
export type { ApiServer } from './http/server.js';
export { recount, type RecountOptions, type RecountResult } from './engine/recount.js';
export { openStore, StoreError, type DB } from './store/store.js';
export {
  exportAt, nodeInfo, explainTx, rootAt, utxoHashAt, utxosOf, balanceNow, requireTip,
  type ExportJson, type ExportNode, type NodeInfo, type Explanation, type ScriptUtxo,
} from './read/queries.js';
export { createLogger, type LogFn, type LogLevel } from './log.js';
export type { ReorgInfo } from './node/follower.js';
export type { Registration, RegStatus } from './types.js';
export { detectAnnouncement, decodeBody, encodeCarrier, encodeBody, type Announcement, type Attempt } from '../script/carrier.js';
export { interpret, judgeAttempts, type InterpretContext, type RegistrationView, type Verdict } from '../script/interpreter.js';
export { BUILTIN_NETWORKS, loadParamsFile, parseParams, paramsHash, type NetworkParams } from '../script/params.js';
export { addressToScript, scriptToAddress, parseStake } from '../script/address.js';
export { RegistryRoot, serializeRootElement, type RootElement } from '../script/root.js';
export { MuHash3072 } from '../script/muhash.js';
export { verifyProof, type ProofJson, type ProofVerdict } from '../script/verifyproof.js';
export { ProofTree, proofKey, proofLeaf, proofOf, type TreePath, type Hash32 } from '../script/prooftree.js';
export type { ReasonCode, DecodeReason, ContextReason } from '../script/reasons.js';
export { listNodes, pageNodes, payouts, countByStatus, type ListedNode, type NodePage, type StatusFilter, type Payee } from './read/listing.js';
export { payoutTable, payoutsHash, type PayoutTable, type PayoutRow, type PayoutRequest, type PayoutWeight } from './read/payouts.js';
