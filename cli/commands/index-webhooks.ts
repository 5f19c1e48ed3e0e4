import { readFileSync } from 'node:fs';
import type { Indexer } from '../../indexer/api.js';
import type { LogFn } from '../../indexer/log.js';
import { defaultExpiringWindow, Webhooks, type WebhookOptions } from '../../indexer/notify/webhooks.js';
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

/**
 * The webhook settings from the flags, or null without --webhook. Called
 * before the index is opened, so a bad secret file or window fails at once.
 */
export async function webhookOptions(params: NetworkParams, args: WebhookArgs, log: LogFn): Promise<WebhookOptions | null> {
  if (args.webhook === undefined) return null;
  const window = args.expiringWindow ?? defaultExpiringWindow(params);
  if (window >= params.expiryBlocks) {
    throw new UsageError(`--expiring-window must be below expiryBlocks (${params.expiryBlocks} on ${params.name}), got ${window}`);
  }
  const secret = args.webhookSecretFile === undefined ? null : await readSecret(args.webhookSecretFile);
  return { url: args.webhook, secret, retries: args.webhookRetries, backoffMs: args.webhookBackoffMs, expiringWindow: window, keepDepth: args.pruneUndo, log };
}

/** Opens the delivery queue in the index's database and starts it. */
export async function startWebhooks(ix: Indexer, params: NetworkParams, opts: WebhookOptions, log: LogFn): Promise<Webhooks> {
  if (opts.secret === null) log('warn', 'webhook events are sent unsigned: give --webhook-secret-file so receivers can check them');
  const hooks = await Webhooks.open(ix.db, params, opts);
  hooks.start(ix);
  log('info', 'sending webhooks', { url: redact(opts.url), expiringWindow: opts.expiringWindow, signed: opts.secret !== null });
  return hooks;
}
