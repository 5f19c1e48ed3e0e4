import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { printJson, UsageError, UserError } from '../common.js';
import { dbOptions, heightCheck, withIndex, type DbArgs } from './query.js';

/*
 * `nodereg proof` serves and checks proofs of the proof tree (docs/spec.md
 * §2.9, docs/proofs.md); `nodereg diff` says what changed in the live set
 * between two heights, and can check that the change leads to the later
 * height's roots.
 */

/** Exit status of a proof or diff that does not hold (1 and 2 stay for unreadable input and usage errors). */
export const INVALID = 3;

interface ProofArgs extends DbArgs { stake: string; height?: number }

const show: CommandModule = {
  command: '$0 <stake>',
  describe: 'the proof that a stake is live at the tip or a past height, or that it is not (JSON)',
  builder: (y: Argv) => dbOptions(y)
    .positional('stake', { type: 'string', demandOption: true, describe: 'staking address or output script hex' })
    .option('height', { type: 'number', describe: 'as of this past height' })
    .check(heightCheck('height'))
    .example('$0 proof bcrt1q... --db ./index > proof.json', 'a proof anyone can check against the proof root')
    .example('$0 proof bcrt1q... --api http://127.0.0.1:8080 --height 400', 'ask a running daemon, at a past height'),
  handler: (argv) => {
    const a = argv as unknown as ProofArgs;
    return withIndex(a, async (source) => {
      // Imported here, as below: the address code and the hashes stay off other commands' start-up.
      const { AddressError, parseStake } = await import('../../script/address.js');
      let script: Buffer;
      try {
        script = parseStake(a.stake, source.params);
      } catch (err) {
        if (err instanceof AddressError) throw new UsageError(err.message);
        throw err;
      }
      printJson(await source.proof(script, a.height));
    });
  },
};

interface VerifyArgs { file: string; root?: string; json: boolean }

function readProof(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${file === '-' ? 'standard input' : file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UserError(`${file === '-' ? 'standard input' : file} is not JSON: give the output of "nodereg proof" or of GET /v1/proof`);
  }
}

const verify: CommandModule = {
  command: 'verify <file>',
  describe: 'check a proof (a file, or - for standard input) against its proof root or a trusted one',
  builder: (y: Argv) => y
    .positional('file', { type: 'string', demandOption: true, describe: 'the proof\'s JSON, or - to read it from standard input' })
    .option('root', { type: 'string', describe: 'the proof root you trust (64 hex digits), e.g. from your own index' })
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' })
    .check((a) => {
      if (a.root !== undefined && !/^[0-9a-fA-F]{64}$/.test(String(a.root))) throw new Error('--root must be 64 hex digits');
      return true;
    })
    .epilogue(`Exit status: 0 the proof holds; ${INVALID} it does not (one line says why); 1 the input is not a proof; 2 usage error.`)
    .example('$0 proof verify proof.json --root <proof root from "nodereg root --json">', 'check a proof against a root you trust')
    .example('curl -s http://127.0.0.1:8080/v1/proof/bcrt1q... | $0 proof verify -', 'check a served proof against its own root'),
  handler: async (argv) => {
    const a = argv as unknown as VerifyArgs;
    // yargs hands a lone "-" positional over as an empty string.
    const proof = readProof(a.file === '' ? '-' : a.file);
    const { verifyProof } = await import('../../script/verifyproof.js');
    const v = verifyProof(proof, a.root);
    if (!v.valid && v.malformed) throw new UserError(`not a proof: ${v.reason}`);
    const p = proof as { stakeScript: string; height: number; proofRoot: string };
    if (a.json) printJson(v.valid ? { valid: true, included: v.included, height: p.height, stakeScript: p.stakeScript, proofRoot: p.proofRoot } : { valid: false, reason: v.reason });
    else if (v.valid) {
      process.stdout.write(`valid: stake ${p.stakeScript} is ${v.included ? 'live' : 'not live'} at height ${p.height} under proof root ${p.proofRoot}${a.root === undefined ? ' (the proof\'s own root: pass --root to check it against one you trust)' : ''}\n`);
    } else process.stdout.write(`INVALID: ${v.reason}\n`);
    if (!v.valid) process.exitCode = INVALID;
  },
};

export const proofCommand: CommandModule = {
  ...LISTED.proof,
  builder: (y: Argv) => y.command(verify).command(show).demandCommand(1),
  handler: () => undefined,
};

interface DiffArgs extends DbArgs { from: number; to: number; check: boolean }

export const diffCommand: CommandModule = {
  ...LISTED.diff,
  builder: (y: Argv) => dbOptions(y)
    .option('from', { type: 'number', demandOption: true, describe: 'the earlier height' })
    .option('to', { type: 'number', demandOption: true, describe: 'the later height' })
    .option('check', { type: 'boolean', default: false, describe: 'apply the diff to the live set at --from and check the registry root and proof root of --to' })
    .check(heightCheck('from'))
    .check(heightCheck('to'))
    .epilogue(`Exit status with --check: 0 the diff leads to --to's roots; ${INVALID} it does not.`)
    .example('$0 diff --db ./index --from 400 --to 450', 'the registrations that started, ended or renewed in between')
    .example('$0 diff --api http://127.0.0.1:8080 --from 400 --to 450 --check', 'check that the diff leads exactly to the roots at 450'),
  handler: (argv) => {
    const a = argv as unknown as DiffArgs;
    return withIndex(a, async (source) => {
      const diff = await source.diff(a.from, a.to);
      if (!a.check) {
        printJson(diff);
        return;
      }
      const live = (await source.export(a.from)).nodes.filter((n) => n.status === 'active');
      const { checkDiff } = await import('../../indexer/read/proofs.js');
      const mismatch = checkDiff(live, diff);
      const summary = `${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed`;
      if (a.json) printJson({ result: mismatch === null ? 'ok' : 'mismatch', from: diff.from, to: diff.to, added: diff.added.length, removed: diff.removed.length, changed: diff.changed.length, mismatch });
      else if (mismatch === null) {
        process.stdout.write(`ok: the ${live.length} nodes live at ${a.from} with the diff (${summary}) give the registry root ${diff.to.root} and proof root ${diff.to.proofRoot} of height ${a.to}\n`);
      } else process.stdout.write(`MISMATCH: ${mismatch}\n`);
      if (mismatch !== null) process.exitCode = INVALID;
    });
  },
};
