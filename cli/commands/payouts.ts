import type { CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { payoutTableJsonPieces } from '../../indexer/read/payoutjson.js';
import { DEFAULT_MIN_PAYOUT, parseAmount, PAYOUT_WEIGHTS, type PayoutTable, type PayoutWeight } from '../../indexer/read/payouttypes.js';
import { UsageError, withJson, withNetwork } from '../common.js';
import { coins, table } from '../format.js';
import type { PayArgs } from '../payment/run.js';
import type { SourceArgs } from '../query-source.js';
import { refuseSecrets, rpcOptions } from './operator.js';

interface PayoutsArgs extends SourceArgs {
  json: boolean;
  from: number;
  to: number;
  amount: string;
  weight: PayoutWeight;
  minPayout: string;
  payFrom?: string;
}

/**
 * The flags that only mean something with --pay-from. The node's and the
 * key's flags are not among them: nodereg.conf and NODEREG_* may set them
 * for every command.
 */
const PAYMENT_FLAGS = ['psbt', 'utxos', 'broadcast'] as const;
/** Fee rates above this (sat/vB) are taken for a typo: a payout needs no priority. */
const MAX_PAY_FEE_RATE = 1000;

function checkPayment(a: Record<string, unknown>): true {
  refuseSecrets(a, 1);
  if (a.payFrom === undefined) {
    const stray = PAYMENT_FLAGS.filter((f) => f === 'broadcast' ? a[f] === true : a[f] !== undefined);
    if (stray.length > 0) throw new Error(`${stray.map((f) => `--${f}`).join(', ')} go(es) with --pay-from <address>: they build the payment transaction`);
    return true;
  }
  const rate = a['fee-rate'] as number | undefined;
  if (rate === undefined) throw new Error('--pay-from needs --fee-rate <sat/vB>');
  if (!Number.isFinite(rate) || rate <= 0 || rate > MAX_PAY_FEE_RATE) throw new Error(`--fee-rate must be a positive number of sat/vB up to ${MAX_PAY_FEE_RATE}, got ${rate}`);
  if (a.psbt === undefined) throw new Error('--pay-from needs --psbt <file>: where the payment\'s PSBT(s) are written');
  const max = a['max-outputs'] as number;
  if (!Number.isSafeInteger(max) || max < 1) throw new Error(`--max-outputs must be a whole number ≥ 1, got ${max}`);
  return true;
}

const wholeHeight = (name: string, v: unknown): void => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new UsageError(`--${name} must be a whole height ≥ 0, got ${String(v)}`);
};

/** Flags checked before the index is opened: every mistake here is a usage error (exit 2). */
function request(a: PayoutsArgs): { from: number; to: number; amount: bigint; weight: PayoutWeight; minPayout: bigint } {
  wholeHeight('from', a.from);
  wholeHeight('to', a.to);
  if (a.from > a.to) throw new UsageError(`--from ${a.from} is above --to ${a.to}: the window is from..to, both included`);
  const amount = parseAmount(String(a.amount));
  if (amount === null || amount === 0n) throw new UsageError(`--amount must be a whole number of base units above 0 (e.g. 100000000 for 1 coin), got "${String(a.amount)}"`);
  const minPayout = parseAmount(String(a.minPayout));
  if (minPayout === null) throw new UsageError(`--min-payout must be a whole number of base units ≥ 0, got "${String(a.minPayout)}"`);
  return { from: a.from, to: a.to, amount, weight: a.weight, minPayout };
}

function readable(t: PayoutTable, minPayout: bigint): string {
  const paid = t.payouts.reduce((sum, r) => sum + BigInt(r.amount), 0n);
  return [
    `heights ${t.from}..${t.to} (${t.to - t.from + 1} blocks), ${t.amount} base units (${coins(t.amount)} coins) by ${t.weight}, dust below ${minPayout}`,
    '',
    t.payouts.length === 0 ? '(nobody to pay: no node was live in the window, or every share was dust)'
      : table(['#', 'address / stake script', 'weight', 'amount', 'coins'],
        t.payouts.map((r, i) => [String(i + 1), r.address ?? r.stakeScript, String(r.weight), r.amount, coins(r.amount)])),
    '',
    `total       ${paid} base units to ${t.payouts.length} recipient(s)`,
    `payoutsHash ${t.payoutsHash}`,
  ].join('\n') + '\n';
}

export const payoutsCommand: CommandModule = {
  ...LISTED.payouts,
  // Unknown flags stay errors, but stray positionals reach refuseSecrets, which does not echo a pasted key.
  builder: (y) => rpcOptions(withJson(withNetwork(y.strict(false).strictOptions(true))), false)
    .option('from', { type: 'number', demandOption: true, describe: 'first height of the window' })
    .option('to', { type: 'number', demandOption: true, describe: 'last height of the window (included)' })
    .option('amount', { type: 'string', demandOption: true, describe: 'total to pay, in base units' })
    .option('weight', { choices: PAYOUT_WEIGHTS, default: 'uptime' as const, describe: 'uptime: one per live height; age: more per height for older registrations' })
    .option('min-payout', { type: 'string', default: DEFAULT_MIN_PAYOUT.toString(), describe: 'shares below this many base units are dropped and the rest shared again' })
    .option('db', { type: 'string', describe: 'index directory (when no daemon holds it)' })
    .option('api', { type: 'string', describe: 'or the read API of a running daemon, e.g. http://127.0.0.1:8080' })
    .option('pay-from', { type: 'string', describe: 'build the payment: PSBT(s) spending this address\'s coins that pay every row to its stake script' })
    .option('fee-rate', { type: 'number', describe: 'with --pay-from: sat/vB (refused below the node\'s floor when a node is given)' })
    .option('psbt', { type: 'string', describe: 'with --pay-from: the PSBT file (base64); several are out-1.psbt, out-2.psbt…' })
    .option('max-outputs', { type: 'number', default: 1000, describe: 'with --pay-from: rows per transaction; more rows make more PSBTs' })
    .option('utxos', { type: 'string', describe: 'with --pay-from: the payer\'s coins from this JSON file instead of the index (listunspent output works)' })
    .option('key-file', { type: 'string', describe: 'with --pay-from: sign with the payer\'s WIF key in this file, mode 600 (or NODEREG_WIF)' })
    .option('wif', { type: 'string', hidden: true })
    .option('broadcast', { type: 'boolean', default: false, describe: 'with --key-file: send the signed transactions to the node (--rpc)' })
    .conflicts('db', 'api')
    .check((a) => {
      if (a.db === undefined && a.api === undefined) throw new Error('give --db <dir>, or --api <url> of a running daemon');
      return checkPayment(a);
    })
    .example('$0 payouts --db ./index --from 1000 --to 1999 --amount 5000000000', 'share 50 coins over the nodes live in blocks 1000..1999')
    .example('$0 payouts --api http://127.0.0.1:8080 --from 1000 --to 1999 --amount 5000000000 --weight age --json', 'the same by node age, as JSON with its payoutsHash')
    .example('$0 payouts --db ./index --from 1000 --to 1999 --amount 5000000000 --pay-from bc1q... --fee-rate 5 --psbt pay.psbt --rpc http://127.0.0.1:8332', 'write the PSBT that pays the table, for the payer\'s wallet to sign'),
  handler: async (argv) => {
    const a = argv as unknown as PayoutsArgs;
    const req = request(a);
    if (a.payFrom !== undefined) {
      const { runPayment } = await import('../payment/run.js');
      return runPayment(a as unknown as PayArgs, req, (t) => process.stdout.write(readable(t, req.minPayout)));
    }
    // Imported here, not at the top: keeps the store and the address code off other commands' start-up.
    const [{ asUserError }, { openQuerySource }] = await Promise.all([import('../index-access.js'), import('../query-source.js')]);
    const source = await openQuerySource(a);
    try {
      const t = await source.payouts(req);
      // printJson's text, written in pieces: one string of a 100 000-row table costs more to encode than to build.
      if (a.json) for (const piece of [...payoutTableJsonPieces(t, 2), '\n']) process.stdout.write(piece);
      else process.stdout.write(readable(t, req.minPayout));
    } catch (err) {
      throw asUserError(err, a.db);
    } finally {
      await source.close();
    }
  },
};
