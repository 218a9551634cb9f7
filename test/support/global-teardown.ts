import { rmSync } from 'node:fs';
import { Client, escapeIdentifier } from 'pg';
import { runInfo } from './test-env';
import { dropRedisPrefix } from './redis-prefix';

/** Drops everything this run created: clones, silo databases, the template, the app role. */
export default async function globalTeardown(): Promise<void> {
  if (!process.env.STRATA_TEST_RUN_INFO) return;
  const info = runInfo();
  const admin = new Client({ connectionString: info.adminUrl });
  await admin.connect();
  try {
    const dbs = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname LIKE $2 OR datname = $3`,
      [`strata_f_${info.runId}_%`, `strata_t_%_${info.runId}`, info.templateDb],
    );
    for (const { datname } of dbs.rows) await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(datname)} WITH (FORCE)`);
    for (const role of [info.appRole, `${info.appRole}_control`]) await admin.query(`DROP ROLE IF EXISTS ${escapeIdentifier(role)}`);
    await dropRedisPrefix(process.env.TEST_REDIS_URL, `strata-test-${info.runId}`).catch(() => undefined);
  } finally {
    await admin.end();
    rmSync(process.env.STRATA_TEST_RUN_INFO, { force: true });
    delete process.env.STRATA_TEST_RUN_INFO;
  }
}
