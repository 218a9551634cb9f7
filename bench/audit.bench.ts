/**
 * Audit log bench (libs/platform/audit): what an entry costs and how fast the chain verifies, on a
 * throw-away database of BENCH_DATABASE_URL's server. Prints latencies and rates; no targets.
 *
 *   npm run bench:audit -- [--serial 2000] [--clients 8] [--per-client 500]
 *
 * - append, serial: one `control.audit_append` at a time (an implicit transaction each);
 * - append, concurrent: `--clients` connections appending at once (they serialize on the lock);
 * - impersonation check: the guard's per-request read of its impersonation row (primary key);
 * - verify: verifyAuditChain over everything appended, entries per second.
 */
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { verifyAuditChain, type AuditQuery } from '#strata/audit';
import { BenchDatabase } from './bench-database';

const APPEND = `SELECT seq FROM control.audit_append('system', 'bench', NULL, $1, 'bench.appended', NULL, $2)`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const fmt = (ms: number) => `${ms.toFixed(3)} ms`;

function summary(name: string, samples: number[], wallMs: number): string {
  const s = [...samples].sort((a, b) => a - b);
  return `${name.padEnd(28)} n=${String(s.length).padEnd(6)} p50 ${fmt(percentile(s, 50))}  p99 ${fmt(percentile(s, 99))}  ${(s.length / (wallMs / 1000)).toFixed(0)}/s`;
}

async function timed(client: Client, sql: string, params: unknown[], n: number, out: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await client.query(sql, params);
    out.push(performance.now() - t0);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: { serial: { type: 'string', default: '2000' }, clients: { type: 'string', default: '8' }, 'per-client': { type: 'string', default: '500' } },
  });
  const serial = Number(values.serial);
  const clients = Number(values.clients);
  const perClient = Number(values['per-client']);
  const db = new BenchDatabase();
  process.on('SIGINT', () => void db.drop().finally(() => process.exit(130)));
  await db.create();
  const connect = async () => {
    const c = new Client({ connectionString: db.ownerUrl });
    await c.connect();
    return c;
  };
  const main = await connect();
  try {
    const tenantId = '00000000-0000-4000-8000-000000000001';
    const details = { userId: '00000000-0000-4000-8000-000000000002', role: 'member', count: 3 };
    await timed(main, APPEND, [tenantId, details], 200, []); // warm-up

    const serialMs: number[] = [];
    let t0 = performance.now();
    await timed(main, APPEND, [tenantId, details], serial, serialMs);
    console.log(summary('append, serial', serialMs, performance.now() - t0));

    const pool = await Promise.all(Array.from({ length: clients }, connect));
    const concurrentMs: number[] = [];
    t0 = performance.now();
    await Promise.all(pool.map((c) => timed(c, APPEND, [tenantId, details], perClient, concurrentMs)));
    console.log(summary(`append, ${clients} concurrent`, concurrentMs, performance.now() - t0));
    await Promise.all(pool.map((c) => c.end()));

    const { rows } = await main.query<{ id: string }>(
      `WITH u AS (INSERT INTO control.users (email, password_hash) VALUES ('bench@bench.test', 'x') RETURNING id),
            t AS (INSERT INTO control.tenants (slug, name, tier, pool_id, schema_name) VALUES ('bench-imp', 'bench', 'pool', 'main-pool', 'shared') RETURNING id)
       INSERT INTO control.impersonations (tenant_id, user_id, operator_id, reason, expires_at)
       SELECT t.id, u.id, 'bench-operator', 'bench', now() + interval '10 minutes' FROM t, u RETURNING id`,
    );
    const checkMs: number[] = [];
    t0 = performance.now();
    await timed(
      main,
      `SELECT tenant_id, user_id, operator_id, (revoked_at IS NULL AND expires_at > now()) AS live FROM control.impersonations WHERE id = $1`,
      [rows[0].id],
      serial,
      checkMs,
    );
    console.log(summary('impersonation check', checkMs, performance.now() - t0));

    const query: AuditQuery = async <R>(sql: string, params: unknown[]) => (await main.query(sql, params)).rows as R[];
    t0 = performance.now();
    const report = await verifyAuditChain(query);
    const verifyMs = performance.now() - t0;
    console.log(
      `${'verify'.padEnd(28)} ${report.checked} entries in ${verifyMs.toFixed(0)} ms (${(report.checked / (verifyMs / 1000)).toFixed(0)} entries/s), ${report.broken ? `BROKEN at ${report.broken.seq}` : 'intact'}`,
    );
    if (report.broken || report.checked !== 200 + serial + clients * perClient) process.exitCode = 1;
  } finally {
    await main.end();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
