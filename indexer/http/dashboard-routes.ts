import type { FastifyInstance, FastifyReply } from 'fastify';
import { DASHBOARD_JS, dashboardHtml } from './dashboard.js';
import { NODE_JS, nodePageHtml } from './nodepage.js';
import { COMMON_JS } from './page-kit.js';
import * as S from './schemas.js';

/*
 * The dashboard's pages and scripts: GET / (the registry), GET /node/<stake>
 * (one node) and their scripts. Served only when the API is mounted at the
 * root, since the pages use root paths.
 */

const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

const pageQuery = {
  type: 'object', additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, description: 'rows per page of the registry table (default 100)' } },
} as const;

export function registerDashboard(app: FastifyInstance, network: string, explorerUrl: string | null): void {
  const html = (reply: FastifyReply, body: string): string => {
    void reply.type('text/html; charset=utf-8').header('content-security-policy', CSP);
    return body;
  };
  const script = (reply: FastifyReply, body: string): string => {
    void reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache');
    return body;
  };
  const main = dashboardHtml(network, explorerUrl);
  const node = nodePageHtml(network, explorerUrl);

  app.get('/', { schema: { hide: true, querystring: pageQuery } }, async (_req, reply) => html(reply, main));
  app.get('/node/:stake', { schema: { hide: true, params: S.stakeParams, querystring: S.emptyQuery } }, async (_req, reply) => html(reply, node));
  app.get('/common.js', { schema: { hide: true, querystring: S.emptyQuery } }, async (_req, reply) => script(reply, COMMON_JS));
  app.get('/dashboard.js', { schema: { hide: true, querystring: S.emptyQuery } }, async (_req, reply) => script(reply, DASHBOARD_JS));
  app.get('/node.js', { schema: { hide: true, querystring: S.emptyQuery } }, async (_req, reply) => script(reply, NODE_JS));
}
