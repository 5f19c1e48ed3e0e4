import { createHmac } from 'node:crypto';
import type { QueuedEvent } from './journal.js';

/*
 * One HTTP delivery of one webhook event, and the retry policy around it.
 * No state: the queue (journal.ts, producer.ts) decides what to send next.
 */

export const SIGNATURE_HEADER = 'x-nodereg-signature';
export const ID_HEADER = 'x-nodereg-id';

/** The answer to one attempt. */
export type Attempt =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly permanent: boolean; readonly status: number | null; readonly error: string };

/** `sha256=` and the hex HMAC-SHA256 of the exact body bytes under the secret. */
export function sign(secret: Buffer, body: Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** The body of one attempt: the queued event with the time it is sent, inside what is signed. */
export function bodyOf(e: QueuedEvent, now: Date): Buffer {
  const { id, seq, type, network, createdAt, data } = e;
  return Buffer.from(JSON.stringify({ id, seq, type, network, createdAt, timestamp: Math.floor(now.getTime() / 1000), data }), 'utf8');
}

/**
 * A 2xx is delivered. A 4xx other than 408 and 429 (and a 3xx: redirects are
 * not followed, the URL is likely wrong) will not get better by retrying.
 * Anything else (5xx, 408, 429, no answer, a timeout) is retried.
 */
export function judge(status: number): Attempt {
  if (status >= 200 && status < 300) return { ok: true, status };
  const permanent = status >= 300 && status < 500 && status !== 408 && status !== 429;
  return { ok: false, permanent, status, error: `HTTP ${status}` };
}

export async function post(url: string, e: QueuedEvent, secret: Buffer | null, timeoutMs: number, stop?: AbortSignal): Promise<Attempt> {
  const body = bodyOf(e, new Date());
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'nodereg-webhook',
    [ID_HEADER]: e.id,
    'x-nodereg-event': e.type,
    'x-nodereg-seq': String(e.seq),
  };
  if (secret) headers[SIGNATURE_HEADER] = sign(secret, body);
  try {
    // The string is the signed bytes decoded, and encodes back to them exactly.
    const res = await fetch(url, { method: 'POST', headers, body: body.toString('utf8'), redirect: 'manual', signal: stop ? AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs) });
    // The answer's body is of no use; not reading it would hold the connection.
    await res.body?.cancel().catch(() => undefined);
    return judge(res.status);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const error = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : cause?.code ?? cause?.message ?? (err as Error).message;
    return { ok: false, permanent: false, status: null, error };
  }
}

/**
 * Delay before retry `attempt` (1 = the first retry): base·2^(attempt−1),
 * capped, then drawn uniformly from its upper half so that many daemons
 * retrying one receiver spread out.
 */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const full = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(full / 2 + random() * (full / 2));
}
