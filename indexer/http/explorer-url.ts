/* The `--explorer-url` check, apart from the HTTP code so the CLI can run it before loading that. */

/**
 * Checks an `--explorer-url` template: an http(s) URL with `{txid}` where
 * the transaction id goes. Returns the reason it is refused, or null.
 */
export function explorerUrlProblem(template: string): string | null {
  if (!template.includes('{txid}')) return `--explorer-url must contain {txid} where the transaction id goes, such as https://mempool.space/tx/{txid}; got "${template}"`;
  let url: URL;
  try {
    url = new URL(template.split('{txid}').join('0'.repeat(64)));
  } catch {
    return `--explorer-url is not a URL: "${template}"`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `--explorer-url must be an http:// or https:// URL, got "${template}"`;
  return null;
}
