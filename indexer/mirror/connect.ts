import pg from 'pg';
import { redact } from '../redact.js';

/** PostgreSQL could not be reached or refused us: the message says which server and why. */
export class PostgresUnavailableError extends Error {
  constructor(url: string, cause: unknown) {
    const why = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause);
    super(`cannot reach PostgreSQL at ${describeUrl(url)}: ${why}; start it, or fix --postgres (a URL such as postgresql://user@host/dbname)`);
    this.name = 'PostgresUnavailableError';
  }
}

/** The URL as a log may show it: password masked. */
export function describeUrl(url: string): string {
  return redact(url);
}

/**
 * One connection. A connection that breaks while idle (the server restarted)
 * reports it through `onBroken` instead of crashing the process, as an
 * unhandled 'error' event would.
 */
export async function connectPostgres(url: string, onBroken: (err: Error) => void = () => undefined): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'nodereg' });
  client.on('error', onBroken);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new PostgresUnavailableError(url, err);
  }
  return client;
}
