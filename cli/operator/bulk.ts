import { UsageError, UserError } from '../common.js';
import { execute, prepare, type AnnounceRequest, type Session } from './announce.js';
import { readKeyDir } from './keys.js';
import { assess, outcomeText } from './report.js';
import { waitForOutcome, type WaitOptions } from './wait.js';

/** Everything of a renewal request that is the same for every node of a bulk run. */
export type BulkTemplate = Omit<AnnounceRequest, 'kind' | 'stake' | 'label' | 'key' | 'prev' | 'psbtOut'>;

export interface BulkOptions {
  readonly keyDir: string;
  /** Renew registrations that expire within this many blocks (status's --warn-blocks). */
  readonly within: number;
  readonly wait: boolean;
  readonly waitOptions: WaitOptions;
}

export interface BulkLine {
  readonly result: 'renewed' | 'would-renew' | 'confirmed' | 'not-due' | 'ended' | 'no-registration' | 'failed';
  readonly subject: string;
  readonly detail: string;
  readonly txid?: string;
}

const messageOf = (err: unknown): string =>
  err instanceof UserError || err instanceof UsageError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;

/**
 * `renew --all`: renews every live registration controlled by a key in the
 * directory that expires within `within` blocks. Each node is reported on its
 * own line, and one failure never stops the others.
 */
export async function renewAll(s: Session, template: BulkTemplate, opts: BulkOptions, report: (l: BulkLine) => void): Promise<BulkLine[]> {
  const lines: BulkLine[] = [];
  const emit = (l: BulkLine): void => {
    lines.push(l);
    report(l);
  };
  // Per-transaction summaries would drown the per-node lines.
  const quiet: Session = { ...s, json: true };
  const pending: Array<{ label: string; txid: string }> = [];
  for (const entry of readKeyDir(opts.keyDir, s.params)) {
    if ('error' in entry) {
      emit({ result: 'failed', subject: entry.file, detail: entry.error });
      continue;
    }
    let registrations = 0;
    for (const owned of entry.key.owned()) {
      const label = owned.address;
      try {
        const info = await s.source.info(owned.script);
        const r = info.registration;
        if (r === null) continue;
        registrations++;
        // The same rule as `status`: what it calls expiring soon is what gets renewed.
        const verdict = assess(info, s.params, opts.within, label);
        if (r.status !== 'active') {
          emit({ result: 'ended', subject: label, detail: `${r.status} at height ${r.endedHeight}; announce it again with "nodereg announce"` });
          continue;
        }
        if (!verdict.expiringSoon) {
          emit({ result: 'not-due', subject: label, detail: `expires in ${r.blocksUntilExpiry} blocks (height ${r.expiryHeight})` });
          continue;
        }
        const req: AnnounceRequest = { ...template, kind: 'renewal', stake: owned.script, label, key: entry.key };
        const out = await execute(quiet, req, await prepare(quiet, req));
        emit({ result: out.sent ? 'renewed' : 'would-renew', subject: label, detail: out.sent ? `sent ${out.txid}` : `built ${out.txid} (dry run, not sent)`, txid: out.txid });
        if (out.sent) pending.push({ label, txid: out.txid });
      } catch (err) {
        emit({ result: 'failed', subject: label, detail: messageOf(err) });
      }
    }
    if (registrations === 0) emit({ result: 'no-registration', subject: entry.file, detail: 'no registration for any address of this key' });
  }
  if (opts.wait) {
    for (const p of pending) {
      try {
        const outcome = await waitForOutcome(s.source, s.rpc, p.txid, opts.waitOptions);
        const ok = outcome.every((o) => o.accepted);
        emit({ result: ok ? 'confirmed' : 'failed', subject: p.label, detail: outcomeText(p.txid, outcome), txid: p.txid });
      } catch (err) {
        emit({ result: 'failed', subject: p.label, detail: messageOf(err), txid: p.txid });
      }
    }
  }
  return lines;
}
