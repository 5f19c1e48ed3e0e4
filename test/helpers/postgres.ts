/** The throwaway PostgreSQL cluster of the suites (shared with `npm run bench:api -- --postgres`). */
export { startPostgres, type PgCluster } from '../../bench/pgcluster.js';
