/** Placeholder until the dashboard page lands: the registry as a plain table. */
export function dashboardHtml(network: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>nodereg · ${network}</title></head><body><h1>nodereg</h1><p>See <a href="/v1/openapi.json">/v1/openapi.json</a>.</p></body></html>`;
}
