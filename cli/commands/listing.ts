/**
 * The name and one-line description of every command, as the top-level help
 * lists them. Each command's module spreads its entry into its definition;
 * commands/all.ts lists them without importing the modules (see there).
 */
export const LISTED = {
  script: { command: 'script', describe: 'encode or decode an announcement carrier (no chain needed)' },
  recount: { command: 'recount', describe: 'recount the registry from a bitcoind blocks/ directory and print it with its root' },
  index: { command: 'index', describe: 'follow a node over JSON-RPC (woken by ZMQ) and keep the index at its tip' },
  nodes: { command: 'nodes', describe: 'list registrations in FIRST_SEEN order' },
  node: { command: 'node <stake>', describe: 'one stake: its current registration, history, balance, age and expiry' },
  explain: { command: 'explain <txid>', describe: 'why a transaction\'s announcement was accepted or rejected' },
  root: { command: 'root', describe: 'the registry root (spec §2.6) and proof root (§2.9) at the tip or a past height' },
  export: { command: 'export', describe: 'the interchange JSON (docs/spec.md §2.7) at the tip or a past height' },
  utxoHash: { command: 'utxo-hash', describe: 'Core-compatible UTXO-set MuHash (as gettxoutsetinfo muhash) at the tip or a past height' },
  payouts: { command: 'payouts', describe: 'the payout table (docs/spec.md §2.10): an amount shared by the nodes live over a window of heights' },
  verify: { command: 'verify', describe: 'compare the index\'s UTXO-set MuHash with the node\'s gettxoutsetinfo muhash' },
  check: { command: 'check', describe: 'check an index: table checksums, and the stored roots re-derived from its rows' },
  snapshot: { command: 'snapshot <command>', describe: 'create or load a verifiable snapshot of an index' },
  compare: { command: 'compare', describe: 'compare registry roots and proof roots with other indexers and find the first height at which they disagree' },
  proof: { command: 'proof', describe: 'a proof that a stake is live at a height, or not; "proof verify" checks one' },
  diff: { command: 'diff', describe: 'what changed in the live set between two heights (added, removed, changed), with both heights\' roots' },
  announce: { command: 'announce', describe: 'announce a staked node (OP_NEWNODE), refusing what the indexer would reject' },
  renew: { command: 'renew', describe: 'keep a registration alive (OP_RENEWAL), or renew every due one with --all' },
  broadcast: { command: 'broadcast <tx>', describe: 'finalize and send a signed PSBT, or send a raw transaction (announcements are checked first)' },
  status: { command: 'status', describe: 'a staked node\'s status, age, renewals, balance and expiry, with warnings; the exit code suits cron and monitoring' },
  key: { command: 'key <command>', describe: 'create a stake key file, or list the addresses one controls' },
  serve: { command: 'serve', describe: 'serve the read-only HTTP API (and dashboard) from an index' },
  mirror: { command: 'mirror', describe: 'build or catch up the PostgreSQL mirror of an index (rewinding it past a reorg)' },
} as const;

/** One entry of LISTED. */
export type Listed = (typeof LISTED)[keyof typeof LISTED];
