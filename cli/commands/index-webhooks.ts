import { readFileSync } from 'node:fs';
import type { Indexer } from '../../indexer/api.js';
import type { LogFn } from '../../indexer/log.js';
import { defaultExpiringWindow, Webhooks } from '../../indexer/notify/webhooks.js';
import { redact } from '../../indexer/redact.js';
import type { NetworkParams } from '../../script/params.js';
import { UsageError, UserError } from '../common.js';

/* `nodereg index --webhook`: the secret file and the window, checked before anything is sent. */

export interface WebhookArgs {
  webhook?: string;
  webhookSecretFile?: string;
  webhookRetries: number;
  webhookBackoffMs: number;
  expiringWindow?: number;
  pruneUndo?: number;
}

/** The HMAC key: the file's content without its trailing newline; the file must be private like a key file. */
async function readSecret(path: string): Promise<Buffer> {
  // Loaded only here: the operator's key code brings in the signing libraries.
  const { checkKeyFilePrivate } = await import('../operator/keys.js');
  checkKeyFilePrivate(path, 'webhook secret file');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read webhook secret file ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  const secret = text.replace(/[\r\n]+$/, '');
  if (secret.length === 0) throw new UserError(`webhook secret file ${path} is empty; write a long random secret into it (e.g. openssl rand -hex 32 > ${path})`);
  return Buffer.from(secret, 'utf8');
}

/** Opens the delivery queue and starts it, or returns null without --webhook. */
export async function startWebhooks(ix: Indexer, params: NetworkParams, args: WebhookArgs, log: LogFn): Promise<Webhooks | null> {
  if (args.webhook === undefined) return null;
  const window = args.expiringWindow ?? defaultExpiringWindow(params);
  if (window >= params.expiryBlocks) {
    throw new UsageError(`--expiring-window must be below expiryBlocks (${params.expiryBlocks} on ${params.name}), got ${window}`);
  }
  const secret = args.webhookSecretFile === undefined ? null : await readSecret(args.webhookSecretFile);
  if (secret === null) log('warn', 'webhook events are sent unsigned: give --webhook-secret-file so receivers can check them');
  const hooks = await Webhooks.open(ix.db, params, {
    url: args.webhook, secret, retries: args.webhookRetries, backoffMs: args.webhookBackoffMs,
    expiringWindow: window, keepDepth: args.pruneUndo, log,
  });
  hooks.start(ix);
  log('info', 'sending webhooks', { url: redact(args.webhook), expiringWindow: window, signed: secret !== null });
  return hooks;
}
