import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlkFileError } from '../../indexer/chain/blkfiles.js';
import { ChainError } from '../../indexer/chain/chain.js';
import { ChainMismatchError } from '../../indexer/engine/connect.js';
import { exportAt, utxoHashAt } from '../../indexer/read/queries.js';
import { recount, RecountError } from '../../indexer/engine/recount.js';
import { memoryPlan } from '../../indexer/engine/budget.js';
import { BlockParseError } from '../../indexer/chain/scanner.js';
import { CoinFileError, type SpillRecord } from '../../indexer/store/coinfile.js';
import { openIndexStore, resetStore } from '../../indexer/store/store.js';
import { networkFrom, printJson, UserError, type NetworkArgs } from '../common.js';
import { resolveBlocksDir, type DatadirArgs } from '../datadir.js';
import { summary } from '../format.js';
import { asUserError, paramsFor } from '../index-access.js';
import { Progress } from '../progress.js';
import { interruptedLine, NODES_SHOWN } from './recount.js';

/* `nodereg recount`'s work; its flags are in recount.ts. */

export interface RecountArgs extends NetworkArgs, DatadirArgs {
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

/** How many blocks a resumed recount may disconnect before the index is taken to be of another chain. */
const MAX_REWIND = 100;

export async function run(args: RecountArgs): Promise<void> {
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
        txidShareToView: args.cacheMib === undefined,
        threads: args.threads,
        shouldStop: () => stop,
        fast: args.fast,
        throwaway: temp !== null,
        // The spilled coins' hidden file goes with the temporary index (and is gone with the process).
        spillDir: temp ?? undefined,
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
          ...spillStats(result.spills),
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
    // Only this process wrote the file, so a damaged one points at the disk under it.
    if (err instanceof CoinFileError && temp) {
      throw new UserError(`${err.message} (under ${temp}); check the disk that holds TMPDIR, or set TMPDIR to another, and run the command again`);
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


const mib = (b: number): number => Math.round(b / 1048576);

/** What `--stats` says of the spills into a throwaway recount's coin file: totals, then each spill's coins, file size, time and page traffic. */
function spillStats(spills: readonly SpillRecord[] | undefined): object {
  if (spills === undefined || spills.length === 0) return {};
  let ms = 0;
  let read = 0;
  let written = 0;
  for (const s of spills) {
    ms += s.ms;
    read += s.readBytes;
    written += s.writtenBytes;
  }
  return {
    spills: spills.length, spillSeconds: Math.round(ms) / 1000, spillReadMiB: mib(read), spillWrittenMiB: mib(written),
    spillEach: spills.map((s) => ({ puts: s.puts, replacing: s.replacing, dels: s.dels, coins: s.count, fileMiB: mib(s.fileBytes), grew: s.grew, ms: Math.round(s.ms), readMiB: mib(s.readBytes), writtenMiB: mib(s.writtenBytes) })),
  };
}
