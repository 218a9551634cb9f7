import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Client } from 'pg';
// First: jest's moduleNameMapper does not apply to globalSetup (see the hook).
import './strata-imports.hook';
import { bootstrapDatabase } from '../../libs/platform/migrator';
import { adminUrl, urlFor, type TestRunInfo } from './test-env';

/**
 * Once per jest run: a unique app role (NOSUPERUSER, NOBYPASSRLS) and a template database with
 * the control plane and the shared schema migrated. Each test file clones the template.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.STRATA_TEST_RUN_INFO) return; // the other project already set up this run
  const runId = randomBytes(4).toString('hex');
  const info: TestRunInfo = {
    runId,
    adminUrl: adminUrl(),
    appRole: `strata_app_t${runId}`,
    templateDb: `strata_tpl_${runId}`,
  };
  const admin = new Client({ connectionString: info.adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${info.templateDb}`);
  } finally {
    await admin.end();
  }
  try {
    await bootstrapDatabase({ ownerUrl: urlFor(info.templateDb), appRole: info.appRole });
  } catch (err) {
    // jest skips global teardown when setup fails: undo here so nothing is left on the server.
    const c = new Client({ connectionString: info.adminUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${info.templateDb} WITH (FORCE)`).catch(() => undefined);
    for (const r of [info.appRole, `${info.appRole}_control`]) await c.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
    await c.end();
    throw err;
  }
  const file = join(tmpdir(), `strata-test-run-${runId}.json`);
  writeFileSync(file, JSON.stringify(info));
  process.env.STRATA_TEST_RUN_INFO = file;
  // Every API a test starts enqueues under this run's own BullMQ prefix (dropped in teardown), so
  // concurrent runs never see each other's jobs and nothing is left in Redis.
  process.env.JOBS_PREFIX = `strata-test-${runId}`;
}
