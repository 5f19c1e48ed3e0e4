import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { addSecret } from '../redact.js';
import { snippet } from './rpcerror.js';

/*
 * The HTTP side of the RPC client: one POST over a kept-alive connection
 * (node:http, not fetch: a third of the CPU per call), reading the answer
 * without letting its size choose our memory, naming what came back when it was not JSON, and
 * the Basic auth header.
 */

/** What one HTTP exchange gave back. */
export interface Answer {
  status: number;
  text: string;
}

/** A POST that got no answer; `reused` says it went out on a kept-alive connection. */
export interface PostFailure extends Error {
  code?: string;
  reused?: boolean;
}

/**
 * One POST over `agent` (keep-alive), resolving to the status and the body as
 * text. The body is read chunk by chunk and abandoned (the connection is
 * destroyed) as soon as it passes `max` bytes, or at once when its
 * Content-Length already does, so an endless answer costs at most `max` in
 * memory; `tooLarge` makes the error thrown then. Past `timeoutMs`, or when
 * `signal` aborts, the exchange is dropped, body included, and the call rejects
 * with `timedOut()` or the signal's reason.
 */
export function postCapped(
  url: URL, agent: HttpAgent, headers: Record<string, string | number>, body: string,
  limits: { max: number; tooLarge: () => Error; timeoutMs: number; timedOut: () => Error; signal?: AbortSignal | undefined },
): Promise<Answer> {
  const { max, tooLarge, signal } = limits;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (err: unknown, answer?: Answer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve(answer!);
      else reject(err);
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method: 'POST', headers, agent }, (res) => {
      const declared = Number(res.headers['content-length']);
      if (declared > max) {
        finish(tooLarge());
        req.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > max) {
          chunks.length = 0;
          finish(tooLarge());
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks, size).toString('utf8') }));
      res.on('error', (err) => finish(err));
      // A connection closed mid-body ends neither with 'end' nor always with 'error'.
      res.on('close', () => {
        if (!res.complete) finish(Object.assign(new Error('the connection closed before the answer ended'), { code: 'ECONNRESET' }));
      });
    });
    const onAbort = (): void => {
      finish(signal!.reason);
      req.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // One timer for the whole exchange, the body included.
    timer = setTimeout(() => {
      finish(limits.timedOut());
      req.destroy();
    }, limits.timeoutMs);
    req.on('error', (err: PostFailure) => {
      err.reused = req.reusedSocket;
      finish(err);
    });
    req.end(body);
  });
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
