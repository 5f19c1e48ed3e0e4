import { addSecret } from '../redact.js';
import { snippet } from './rpcerror.js';

/*
 * The HTTP side of the RPC client: reading an answer without letting its
 * size choose our memory, naming what came back when it was not JSON, and
 * the Basic auth header.
 */

/**
 * The body as text, read chunk by chunk and abandoned (the connection is
 * closed) as soon as it passes `max` bytes, so an endless answer costs at
 * most `max` in memory. `tooLarge` makes the error thrown then.
 */
export async function readCapped(res: Response, max: number, tooLarge: () => Error): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      chunks.length = 0;
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function basicAuth(userPass: string, secret = false): string {
  const encoded = Buffer.from(userPass).toString('base64');
  // A proxy that echoes the header back in an error must not put it in a log.
  if (secret) addSecret(encoded);
  return `Basic ${encoded}`;
}

export function mib(bytes: number): string {
  return String(Math.round((bytes / (1024 * 1024)) * 10) / 10);
}

/** Names what came instead of JSON: an HTML page (with its title) says "wrong port" best. */
export function notJson(text: string): string {
  if (!/^\s*</.test(text)) return text.trim() === '' ? 'an empty body' : `a body that is not JSON (${snippet(text)})`;
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1]?.trim();
  return title ? `an HTML page ("${snippet(title)}") instead of JSON` : 'an HTML page instead of JSON';
}
