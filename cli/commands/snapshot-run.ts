import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RpcClient, RpcError } from '../../indexer/node/rpc.js';
import { createSnapshot } from '../../indexer/snapshot/create.js';
import { SnapshotFileError } from '../../indexer/snapshot/format.js';
import { loadSnapshot, SnapshotLoadError, SnapshotLoadInterrupted } from '../../indexer/snapshot/load.js';
import { checkAgainstNode, type NodeCheck } from '../../indexer/snapshot/nodecheck.js';
import { firstUndoHeight } from '../../indexer/snapshot/rows.js';
import { printJson, UserError, type NetworkArgs } from '../common.js';
import { resolveRpc, type RpcFlags } from '../datadir.js';
import { asUserError, openIndexForRead } from '../index-access.js';
import { formatBytes, Progress } from '../progress.js';

/* What `nodereg snapshot create|load` do, loaded only when they run. */

export interface CreateArgs extends NetworkArgs {
  db: string;
  out: string;
  undoBlocks: number;
  json: boolean;
}

export interface LoadArgs extends RpcFlags {
  file: string;
  db: string;
  rpcTimeout: number;
  json: boolean;
}

const asUser = (err: unknown, db: string): unknown =>
  err instanceof SnapshotFileError || err instanceof SnapshotLoadError || err instanceof RpcError ? new UserError(err.message) : asUserError(err, db);

/** LevelDB's files in an index directory: what the create reads, for the progress bar. */
function indexBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir)) if (/\.(ldb|sst|log)$/.test(e)) n += statSync(join(dir, e)).size;
  return Math.max(n, 1);
}

export async function runCreate(args: CreateArgs): Promise<void> {
  if (existsSync(args.out)) throw new UserError(`--out ${args.out} exists; give a new file name (a snapshot is never written over a file)`);
  const { db } = await openIndexForRead(args.db, args);
  const progress = new Progress();
  let result;
  try {
    const total = indexBytes(args.db);
    progress.start('snapshot', total, 'bytes');
    result = await createSnapshot(db, args.out, { undoBlocks: args.undoBlocks, onProgress: (n) => progress.update(Math.min(n, total)) });
  } catch (err) {
    throw asUser(err, args.db);
  } finally {
    progress.stop();
    await db.close();
  }
  const { header } = result;
  if (args.json) {
    printJson({ file: args.out, header, rows: result.rows, bytes: result.fileBytes, sha256: result.sha256 });
    return;
  }
  process.stdout.write(`snapshot of ${header.network} at height ${header.height} (${header.tip}) written to ${args.out}\n`
    + `  ${result.rows} rows, ${formatBytes(result.fileBytes)} (${formatBytes(result.bodyBytes)} uncompressed), sha256 ${result.sha256}\n`
    + `  registry root ${header.root}\n`
    + `  utxo muhash    ${header.utxoMuhash ?? 'none (index built without --utxo-hash)'}\n`
    + `  proof root     ${header.proofRoot ?? 'none (this index stores no proof root)'}\n`
    + `  undo records   for the last ${header.undoBlocks} blocks\n`);
}

/** The node the flags name, or null when none was given. */
function nodeOf(args: LoadArgs): RpcFlags | null {
  return args.rpc !== undefined || args.datadir !== undefined || args.rpcCookie !== undefined ? args : null;
}

export async function runLoad(args: LoadArgs): Promise<void> {
  const flags = nodeOf(args);
  let node: NodeCheck | null = null;
  const progress = new Progress();
  // Ctrl-C or SIGTERM stops the load and removes its directory; a second one exits at once
  // (what it leaves beside --db, the next load removes).
  const stop = new AbortController();
  const onSignal = (): void => {
    if (stop.signal.aborted) {
      progress.stop();
      process.stderr.write('interrupted again: stopping at once\n');
      process.exit(130);
    }
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result;
  try {
    const total = statSync(args.file, { throwIfNoEntry: false })?.size ?? 1;
    progress.start('load', total, 'bytes');
    result = await loadSnapshot(args.file, args.db, {
      signal: stop.signal,
      onProgress: (n) => progress.update(n),
      beforeCommit: flags === null ? undefined : async (_db, header, params) => {
        progress.stop();
        const target = resolveRpc(flags, params);
        const rpc = new RpcClient({
          url: target.url, user: target.user, password: target.password ?? process.env.NODEREG_RPC_PASSWORD, cookieFile: target.cookieFile,
          retries: 2, timeoutMs: args.rpcTimeout * 1000,
        });
        node = await checkAgainstNode(rpc, header);
      },
    });
  } catch (err) {
    if (err instanceof SnapshotLoadInterrupted) {
      progress.stop();
      process.stderr.write(`interrupted: nothing was loaded into ${args.db}; run the same command again to load the snapshot\n`);
      process.exitCode = 130;
      return;
    }
    throw asUser(err, args.db);
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const { header } = result;
  const checked = node as NodeCheck | null;
  if (args.json) {
    printJson({ db: args.db, header, rows: result.rows, checks: result.checks, node: checked });
    return;
  }
  const lines = [`loaded ${args.file} into ${args.db}: ${header.network} at height ${header.height} (${header.tip}), ${result.rows} rows`];
  for (const c of result.checks) lines.push(`  ok  ${c.what} (${c.rows}): ${c.derived}`);
  if (header.proofRoot === null) lines.push('  --  proof root: the snapshot carries none, so none was checked');
  if (checked === null) {
    lines.push('  --  no node given (--rpc or --datadir): the tip and the UTXO set were not checked against a node');
  } else {
    lines.push(`  ok  the node's block at height ${header.height} is the snapshot's tip`);
    lines.push(checked.muhash === 'match' ? `  ok  the node's UTXO-set MuHash at height ${header.height} is the snapshot's` : `  --  UTXO-set MuHash not checked against the node: ${checked.note}`);
  }
  const undoFrom = Math.max(0, firstUndoHeight(header.height, header.undoBlocks));
  lines.push(`continue with: nodereg index --db ${args.db} …  (undo data from height ${undoFrom} on: a reorg that reaches below it needs a recount)`);
  process.stdout.write(lines.join('\n') + '\n');
}
