import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';
import { runInfo, urlFor } from './test-env';

export interface TestDatabase {
  name: string;
  ownerUrl: string;
  appRole: string;
  runId: string;
  /** Drops the clone and every silo database its tenants created. */
  drop(): Promise<void>;
}

/** A fresh control-plane + shared-schema database for one test file, cloned from the run's template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const info = runInfo();
  const name = `strata_f_${info.runId}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: info.adminUrl });
  await admin.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${escapeIdentifier(name)} TEMPLATE ${escapeIdentifier(info.templateDb)}`);
        break;
      } catch (err) {
        // 55006: the template is briefly in use by a parallel clone; retry.
        if ((err as { code?: string }).code !== '55006' || attempt > 20) throw err;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await admin.end();
  }
  const owner = new Client({ connectionString: urlFor(name) });
  await owner.connect();
  await owner.query(`UPDATE control.pools SET database = current_database()`);
  await owner.end();

  return {
    name,
    ownerUrl: urlFor(name),
    appRole: info.appRole,
    runId: info.runId,
    async drop() {
      const c = new Client({ connectionString: info.adminUrl });
      await c.connect();
      try {
        const own = new Client({ connectionString: urlFor(name) });
        await own.connect();
        const rows = await own
          .query<{ database_name: string }>(`SELECT database_name FROM control.tenants WHERE database_name IS NOT NULL`)
          .finally(() => own.end());
        for (const r of rows.rows) await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(r.database_name)} WITH (FORCE)`);
        await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A slug no other test file (or run) uses: silo database names derive from slugs. */
export function uniqueSlug(base: string): string {
  // The run id last: global teardown finds this run's silo databases by that suffix.
  return `${base}-${randomBytes(3).toString('hex')}-${runInfo().runId}`;
}
