/**
 * Keeps secrets out of everything a user or a log collector sees. Two kinds
 * are masked: the password of any `scheme://user:password@host` URL, wherever
 * it appears in a text, and the values registered with {@link addSecret} (an
 * RPC password given by flag, a cookie's secret) wherever they appear.
 */

const MASK = '***';
/** Registered secrets, longest first so that one holding another is masked whole. */
let secrets: string[] = [];

/** A user-info password in a URL: `//user:pass@`. The user name stays, as bitcoind users expect. */
const URL_PASSWORD = /(\/\/[^\s/:@]*):([^\s/@]*)@/g;

/**
 * Masks `value` in every later {@link redact}. Short values are ignored: masking
 * every "x" in a log would destroy it and hide nothing.
 */
export function addSecret(value: string): void {
  if (value.length < 4 || secrets.includes(value)) return;
  secrets = [...secrets, value].sort((a, b) => b.length - a.length);
}

/** The text with URL passwords and registered secrets replaced by `***`. */
export function redact(text: string): string {
  let out = text.includes('@') ? text.replace(URL_PASSWORD, `$1:${MASK}@`) : text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(MASK);
  return out;
}
