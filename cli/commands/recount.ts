import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { BlkFileError } from '../../indexer/chain/blkfiles.js';
import { ChainError } from '../../indexer/chain/chain.js';
import { DEFAULT_THREADS } from '../../indexer/chain/chainpass.js';
import { ChainMismatchError } from '../../indexer/engine/connect.js';
import { exportAt, utxoHashAt } from '../../indexer/read/queries.js';
import { recount, RecountError } from '../../indexer/engine/recount.js';
import { DEFAULT_MEMORY_MIB, memoryPlan } from '../../indexer/engine/budget.js';
import { BlockParseError } from '../../indexer/chain/scanner.js';
import { openIndexStore, resetStore } from '../../indexer/store/store.js';
import { networkFrom, printJson, UserError, withJson, withNetwork, type NetworkArgs } from '../common.js';
import { resolveBlocksDir, withDatadir, type DatadirArgs } from '../datadir.js';
import { summary } from '../format.js';
import { asUserError, paramsFor } from '../index-access.js';
import { Progress } from '../progress.js';

interface RecountArgs extends NetworkArgs, DatadirArgs {
  blocksDir?: string;
  height?: number;
  json: boolean;
  db?: string;
  cacheMib?: number;
  memoryMib: number;
  threads?: number;
  utxoHash: boolean;
  fast: boolean;
  stats: boolean;
  all: boolean;
  reset: boolean;
}

/** Nodes the human-readable output lists unless --all is given. */
export const NODES_SHOWN = 20;

/**
 * What an interrupted recount tells the user: where it stopped and how to go
 * on. `height` is the index tip (-1 before the first block was connected).
 */
export function interruptedLine(height: number, target: number, temporary: boolean): string {
  const how = temporary ? 'the temporary index was removed' : height < 0
    ? 'run the same command again to start over'
    : `run the same command again to resume from height ${height}`;
  const where = height < 0 ? 'before the first block was connected' : `at height ${height} of ${target}`;
  return `interrupted ${where}; ${how}`;
}

/** How many blocks a resumed recount may disconnect before the index is taken to be of another chain. */
const MAX_REWIND = 100;

async function run(args: RecountArgs): Promise<void> {
  // The datadir layout needs the network named on the command line; an index
  // that remembers its params is checked against them when it opens.
  const blocksDir = resolveBlocksDir(args, networkFrom(args));
  const temp = args.db === undefined ? mkdtempSync(join(tmpdir(), 'nodereg-recount-')) : null;
  const dbPath = args.db ?? join(temp!, 'db');
  const progress = new Progress();
  const started = Date.now();
  let stop = false;
  const onSignal = (): void => {
    // A second Ctrl-C does not wait for the recount to reach a safe point: a
    // kept index resumes from its last flush exactly as after a kill.
    if (stop) {
      progress.stop();
      process.stderr.write('interrupted again: stopping at once\n');
      if (temp) rmSync(temp, { recursive: true, force: true });
      process.exit(130);
    }
    stop = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (args.reset && args.db !== undefined) await resetStore(dbPath);
    const { params: given, fallback } = temp ? { params: networkFrom(args), fallback: undefined } : paramsFor(dbPath, args);
    const { db, params } = await openIndexStore(dbPath, given, { create: true, utxoHash: args.utxoHash, fallback });
    try {
      let target = 0;
      let reading = false;
      const result = await recount({
        blocksDir,
        params,
        db,
        height: args.height,
        // The deprecated --cache-mib, once the database engine's flush threshold, bounds the coin view's spills now.
        memoryBytes: args.cacheMib !== undefined ? args.cacheMib * 1024 * 1024 : memoryPlan(args.memoryMib).tableBytes,
        cacheBytes: args.cacheMib !== undefined ? args.cacheMib * 1024 * 1024 : memoryPlan(args.memoryMib).cacheBytes,
        keepTxidBytes: memoryPlan(args.memoryMib).txidBytes,
        threads: args.threads,
        shouldStop: () => stop,
        fast: args.fast,
        throwaway: temp !== null,
        beforeRewind: (tip, fork) => {
          if (fork > 0 && tip - fork <= MAX_REWIND) return;
          progress.stop();
          throw new UserError(`the index at ${dbPath} was built from another chain: its block at height ${fork + 1} is not in this blocks directory's best chain`
            + ` (they agree only up to height ${fork}, ${tip - fork} blocks below the index's tip); pass --reset to wipe it and recount from scratch, or use another --db`);
        },
        onWarning: (m) => progress.note(`warning: ${m}`),
        onChainProgress: (done, total) => {
          // The first report already counts the bytes of the first chunk.
          if (!reading) progress.start('reading blocks ', total, 'bytes');
          reading = true;
          progress.update(done);
        },
        onChainLoaded: (chain, start, t) => {
          target = t;
          progress.start('connecting     ', t + 1, 'blocks');
          progress.update(start);
          void chain;
        },
        onBlock: (s) => progress.update(s.height + 1),
      });
      progress.stop();
      if (result.stopped) {
        process.stderr.write(interruptedLine(result.height, target, temp !== null) + '\n');
        process.exitCode = 130;
        return;
      }
      if (args.stats) {
        const ru = process.resourceUsage();
        process.stderr.write(JSON.stringify({
          stats: true, blocks: result.blocks, txs: result.txs, seconds: (Date.now() - started) / 1000,
          maxRssMiB: Math.round(ru.maxRSS / 1024), cpuSeconds: (ru.userCPUTime + ru.systemCPUTime) / 1e6,
        }) + '\n');
      }
      const out = await exportAt(db, params, result.height);
      const utxo = args.utxoHash ? await utxoHashAt(db, result.height) : null;
      if (args.json) printJson(utxo === null ? out : { ...out, utxoMuhash: utxo });
      else process.stdout.write(summary(out, utxo, args.all ? Infinity : NODES_SHOWN) + '\n');
    } finally {
      progress.stop();
      await db.close();
    }
  } catch (err) {
    if (err instanceof RecountError || err instanceof BlkFileError || err instanceof ChainError
      || err instanceof ChainMismatchError || err instanceof BlockParseError) {
      throw new UserError(err.message);
    }
    const mapped = asUserError(err, args.db ?? dbPath);
    if (temp && mapped instanceof UserError && /^no space left/.test(mapped.message)) {
      throw new UserError(`no space left on the device holding the temporary index (${temp}); free space there, set TMPDIR to a larger disk, or pass --db <dir>, and run the command again`);
    }
    throw mapped;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (temp) rmSync(temp, { recursive: true, force: true });
  }
}

export const recountCommand: CommandModule = {
  command: 'recount',
  describe: 'recount the registry from a bitcoind blocks/ directory and print it with its root',
  builder: (y: Argv) =>
    withDatadir(withJson(withNetwork(y)))
      .option('blocks-dir', { type: 'string', describe: 'bitcoind blocks/ directory (blk*.dat, optional xor.dat); default: <datadir>/<chain>/blocks' })
      .option('height', { type: 'number', describe: 'stop at this height instead of the best tip' })
      .option('db', { type: 'string', describe: 'keep the index in this directory (resumable); default: a temporary one' })
      .option('utxo-hash', { type: 'boolean', default: false, describe: 'also compute Core\'s UTXO-set MuHash (gettxoutsetinfo muhash); costs time per coin' })
      .option('fast', { type: 'boolean', default: false, describe: 'two passes, tracking only coins of announced stakes: same registry and root, faster (not with --db or --utxo-hash)' })
      .option('reset', { type: 'boolean', default: false, describe: 'with --db: wipe the index first and recount from scratch (needed when it was built from another chain)' })
      .option('stats', { type: 'boolean', default: false, describe: 'print time and peak memory as one JSON line on stderr' })
      .option('all', { type: 'boolean', default: false, describe: `without --json, list every node instead of the first ${NODES_SHOWN}` })
      .option('memory-mib', { type: 'number', default: DEFAULT_MEMORY_MIB, alias: 'utxo-memory-mib', describe: 'memory budget, MiB, shared by LevelDB, the kept txids and the coin view, which spills into the index before its share is full (0: after every block). The default aims to keep a recount under 512 MiB RSS' })
      .option('cache-mib', { type: 'number', hidden: true, deprecated: 'use --memory-mib', describe: 'the memory filled before a flush, MiB (overrides --memory-mib)' })
      .option('threads', { type: 'number', describe: `threads that read and hash blocks (default ${DEFAULT_THREADS}: one per core, at most four)` })
      .check((a) => {
        if (a.height !== undefined && (!Number.isInteger(a.height) || (a.height as number) < 0)) throw new Error('--height must be a whole number ≥ 0');
        if (a.reset && a.db === undefined) throw new Error('--reset wipes the index given by --db, so it needs --db');
        if (a.fast && (a.db !== undefined || a['utxo-hash'])) throw new Error('--fast keeps only the coins of announced stakes, so it cannot be combined with --db or --utxo-hash');
        if (a['cache-mib'] !== undefined && (!Number.isFinite(a['cache-mib']) || (a['cache-mib'] as number) < 1)) throw new Error('--cache-mib must be at least 1');
        if (!Number.isFinite(a['memory-mib']) || (a['memory-mib'] as number) < 0) throw new Error('--memory-mib must be 0 or more');
        if (a.threads !== undefined && (!Number.isInteger(a.threads) || (a.threads as number) < 1 || (a.threads as number) > 64)) throw new Error('--threads must be a whole number from 1 to 64');
        return true;
      })
      .example('$0 recount --network regtest --blocks-dir fixtures/chains/demo/blocks', 'recount the bundled demo chain')
      .example('$0 recount --blocks-dir ~/.bitcoin/blocks --json > registry.json', 'the interchange JSON of a mainnet node'),
  handler: (argv) => run(argv as unknown as RecountArgs),
};
