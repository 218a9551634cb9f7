import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { loadStrataConfig } from '#strata/common';
import { bootstrapDatabase, bootstrapOptionsFrom, checkFleetGuardrails, runFleet, type FleetMode, type FleetReport, type TargetResult } from '#strata/migrator';
import { CliDatabaseError, resolveCliDatabase } from './cli-database';

const USAGE = `usage: npm run migrate -- <status|plan|up|check> [options]

  status                 per target: applied version, pending migrations, last error; drift summary
  plan                   what 'up' would apply, changing nothing (dry run)
  up                     apply migrations/control, then migrations/tenant to every target
  check                  RLS guardrails on every target (exit 1 on any violation)

  --tenant <slug>        only this tenant's target (a pool tenant's target is its pool's shared schema)
  --canary <slug>        migrate this tenant's target first, alone, and stop if it fails
  --concurrency <n>      targets migrated at once (default 8)
  --per-server-cap <n>   connections the runner may hold on one server (default 10)
  --verbose              list every target, not only those that need attention
  --json                 print the report as JSON

Needs DATABASE_URL (owner connection to the control-plane database) and DB_APP_USER; with
DATABASE_URL unset, the embedded PostgreSQL of 'npm start' (.data/dev-secrets.json, EMBEDDED_PG_PORT).`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer`);
  return n;
}

function line(r: TargetResult): string {
  const where = `${r.target.key.padEnd(34)} ${`${r.target.host}:${r.target.port}/${r.target.database}`.padEnd(40)} ${r.target.schema.padEnd(24)}`;
  const state =
    r.status === 'failed'
      ? `FAILED at ${r.failedVersion ?? '?'}: ${r.error}`
      : r.status === 'migrated'
        ? `${r.before} -> ${r.after} (${r.applied.map((a) => `${a.version} ${a.durationMs}ms`).join(', ')})`
        : r.status === 'behind'
          ? `${r.before}, pending ${r.pending.join(', ')}`
          : r.status === 'not-run'
            ? 'not run (canary failed)'
            : r.before;
  const last = r.lastError ? `  [last error at ${r.lastError.version}: ${r.lastError.error}]` : '';
  return `${where} ${r.status.padEnd(8)} ${state}${last}`;
}

function print(report: FleetReport, verbose: boolean): void {
  const counts = new Map<string, number>();
  const versions = new Map<string, number>();
  for (const r of report.results) {
    counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    versions.set(r.after, (versions.get(r.after) ?? 0) + 1);
  }
  const shown = report.results.filter((r) => verbose || !['current', 'migrated'].includes(r.status) || r.lastError);
  if (shown.length) {
    console.log(`${'target'.padEnd(34)} ${'server/database'.padEnd(40)} ${'schema'.padEnd(24)} status   detail`);
    for (const r of shown.sort((a, b) => a.target.key.localeCompare(b.target.key))) console.log(line(r));
    console.log('');
  }
  const secs = report.wallMs / 1000;
  console.log(
    `${report.mode}: ${report.results.length} targets in ${secs.toFixed(1)}s (${(report.results.length / Math.max(secs, 0.001)).toFixed(1)}/s); ` +
      [...counts].map(([s, n]) => `${n} ${s}`).join(', '),
  );
  console.log(`release needs tenant schema ${report.required}; targets by version: ${[...versions].sort().map(([v, n]) => `${v}: ${n}`).join(', ')}`);
  console.log(`peak runner connections per server: ${Object.entries(report.peakConnections).map(([s, n]) => `${s} ${n}`).join(', ')}`);
  if (report.canaryFailed) console.log('canary failed: no other target was touched');
  const failed = report.results.filter((r) => r.status === 'failed').length;
  if (failed) console.log(`${failed} target(s) failed; fix the cause and run 'npm run migrate -- up' again: it resumes exactly the failed and pending targets`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      canary: { type: 'string' },
      concurrency: { type: 'string' },
      'per-server-cap': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const command = positionals[0] ?? 'status';
  if (!['status', 'plan', 'up', 'check'].includes(command) || positionals.length > 1) fail(`unknown command ${positionals.join(' ')}`);
  // DATABASE_URL, or the embedded PostgreSQL of `npm start` when it is unset (and running).
  let env: NodeJS.ProcessEnv;
  try {
    env = (await resolveCliDatabase(process.env)).env;
  } catch (err) {
    if (err instanceof CliDatabaseError) fail(err.message);
    throw err;
  }
  // The CLI needs no signing secret; the rest of the config is validated as for the API.
  const config = loadStrataConfig({ AUTH_JWT_SECRET: 'x'.repeat(32), ...env });

  if (command === 'check') {
    const violations = await checkFleetGuardrails({ url: config.databaseUrl, appRole: config.appDbUser });
    if (values.json) console.log(JSON.stringify(violations, null, 2));
    else for (const v of violations) console.log(`${v.target}${v.table ? ` ${v.table}` : ''}: ${v.problem}`);
    console.log(violations.length ? `${violations.length} RLS guardrail violation(s)` : 'RLS guardrails: every target passes');
    process.exitCode = violations.length ? 1 : 0;
    return;
  }

  if (command === 'up') {
    // The control plane first (and the roles and shared schema of the control server).
    await bootstrapDatabase(bootstrapOptionsFrom(config));
  }
  const report = await runFleet({
    ownerUrl: config.databaseUrl,
    appRole: config.appDbUser,
    mode: command as FleetMode,
    tenantSlug: values.tenant,
    canary: values.canary,
    concurrency: positiveInt('concurrency', values.concurrency, 8),
    perServerCap: positiveInt('per-server-cap', values['per-server-cap'], 10),
  });
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else print(report, values.verbose || report.results.length <= 30);
  process.exitCode = report.ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
