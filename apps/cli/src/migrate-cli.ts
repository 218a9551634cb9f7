import { parseArgs } from 'node:util';
import { loadStrataConfig } from '#strata/common';
import {
  bootstrapDatabase,
  bootstrapOptionsFrom,
  checkFleetGuardrails,
  CONTROL_TARGET_KEY,
  repairChecksums,
  runFleet,
  UnknownMigrationTargetError,
  type DriftedMigration,
  type FleetMode,
  type FleetReport,
  type TargetResult,
} from '#strata/migrator';
import { CliDatabaseError, resolveCliDatabase } from './cli-database';
import { FleetProgressView } from './migrate-progress';
import type { ProgressStream } from './move-progress';

export const MIGRATE_USAGE = `usage: npm run migrate -- <status|plan|up|check|repair> [options]

  status                 per target: applied version, pending migrations, last error, checksum drift
  plan                   what 'up' would apply, changing nothing (dry run)
  up                     apply migrations/control, then migrations/tenant to every target
                         (live progress: a bar on a terminal, a line per changed target otherwise)
  check                  RLS guardrails and checksum drift on every target (exit 1 on either)
  repair --target <key>  record the current files' checksums for applied migrations whose file
                         changed (drift). Runs no SQL: only for harmless edits (comments,
                         whitespace). Without --yes it only shows what it would re-record.

  --tenant <slug>        only this tenant's target (a pool tenant's target is its pool's shared schema)
  --canary <slug>        migrate this tenant's target first, alone, and stop if it fails
  --concurrency <n>      targets migrated at once (default 8)
  --per-server-cap <n>   connections the runner may hold on one server (default 10)
  --target <key>         repair: a target as the reports name it (control, pool:<id>, bridge:<slug>,
                         silo:<slug>); repeatable. --all for every target
  --yes                  repair: do it
  --verbose              list every target, not only those that need attention
  --json                 print the report as JSON (no progress display)

Exit status: 0 all good; 1 a target is behind, failed or drifted, an RLS violation, or repair found
drift without --yes; 2 bad usage or no database.

Needs DATABASE_URL (owner connection to the control-plane database) and DB_APP_USER; with
DATABASE_URL unset, the embedded PostgreSQL of 'npm start' (.data/dev-secrets.json, EMBEDDED_PG_PORT).`;

const COMMANDS = ['status', 'plan', 'up', 'check', 'repair'] as const;
type Command = (typeof COMMANDS)[number];

export interface MigrateCliIo {
  stdout: ProgressStream;
  stderr: ProgressStream;
  /** Where the embedded database's .data is looked for (default process.cwd()). */
  cwd?: string;
}

class UsageError extends Error {}

const short = (checksum: string) => checksum.slice(0, 12);
const driftText = (d: DriftedMigration) => `${d.version}_${d.name} (applied ${short(d.appliedChecksum)}, file now ${short(d.fileChecksum)})`;

function line(r: TargetResult): string {
  const where = `${r.target.key.padEnd(34)} ${`${r.target.host}:${r.target.port}/${r.target.database}`.padEnd(40)} ${r.target.schema.padEnd(24)}`;
  const state =
    r.status === 'failed'
      ? `FAILED at ${r.failedVersion ?? '?'}: ${r.error}`
      : r.status === 'drifted'
        ? `${r.before}, CHANGED AFTER APPLIED: ${(r.drifted ?? []).map(driftText).join(', ')}${r.pending.length ? `; pending ${r.pending.join(', ')}` : ''}`
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

/** What to do about drift, with the keys that have it. */
function driftAdvice(keys: string[]): string {
  return (
    `${keys.length} target(s) run a migration whose file changed after it was applied: ${keys.slice(0, 10).join(', ')}${keys.length > 10 ? ', …' : ''}.\n` +
    `Never edit an applied migration: restore the file (git) and put the change in a new one. If the edit is harmless ` +
    `(a comment, whitespace), record the file as applied: npm run migrate -- repair --target <key> --yes (or --all --yes)`
  );
}

function print(out: ProgressStream, report: FleetReport, verbose: boolean): void {
  const say = (s = '') => out.write(`${s}\n`);
  const counts = new Map<string, number>();
  const versions = new Map<string, number>();
  for (const r of report.results) {
    counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    versions.set(r.after, (versions.get(r.after) ?? 0) + 1);
  }
  const shown = report.results.filter((r) => verbose || !['current', 'migrated'].includes(r.status) || r.lastError);
  if (shown.length) {
    say(`${'target'.padEnd(34)} ${'server/database'.padEnd(40)} ${'schema'.padEnd(24)} status   detail`);
    for (const r of shown.sort((a, b) => a.target.key.localeCompare(b.target.key))) say(line(r));
    say();
  }
  const secs = report.wallMs / 1000;
  say(
    `${report.mode}: ${report.results.length} targets in ${secs.toFixed(1)}s (${(report.results.length / Math.max(secs, 0.001)).toFixed(1)}/s); ` +
      [...counts].map(([s, n]) => `${n} ${s}`).join(', '),
  );
  say(`release needs tenant schema ${report.required}; targets by version: ${[...versions].sort().map(([v, n]) => `${v}: ${n}`).join(', ')}`);
  say(`peak runner connections per server: ${Object.entries(report.peakConnections).map(([s, n]) => `${s} ${n}`).join(', ')}`);
  const control = report.control;
  if (control.drifted.length) say(`control plane: CHANGED AFTER APPLIED: ${control.drifted.map(driftText).join(', ')}`);
  else if (control.pending.length) say(`control plane: at ${control.applied}, pending ${control.pending.join(', ')} (applied by 'up' and at API start)`);
  if (report.canaryFailed) say('canary failed: no other target was touched');
  const failed = report.results.filter((r) => r.status === 'failed').length;
  if (failed) say(`${failed} target(s) failed; fix the cause and run 'npm run migrate -- up' again: it resumes exactly the failed and pending targets`);
  const drifted = [...(control.drifted.length ? [CONTROL_TARGET_KEY] : []), ...report.results.filter((r) => r.status === 'drifted').map((r) => r.target.key)];
  if (drifted.length) say(driftAdvice(drifted));
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer`);
  return n;
}

/**
 * `npm run migrate -- <args>`: returns the exit status. `env` is the process environment (DATABASE_URL,
 * or the embedded database of `npm start` when it is unset).
 */
export async function runMigrateCli(args: string[], env: NodeJS.ProcessEnv, io: MigrateCliIo): Promise<number> {
  const say = (s = '') => io.stdout.write(`${s}\n`);
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        tenant: { type: 'string' },
        canary: { type: 'string' },
        concurrency: { type: 'string' },
        'per-server-cap': { type: 'string' },
        target: { type: 'string', multiple: true },
        all: { type: 'boolean', default: false },
        yes: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    });
    if (values.help) {
      say(MIGRATE_USAGE);
      return 0;
    }
    const command = (positionals[0] ?? 'status') as Command;
    if (!COMMANDS.includes(command) || positionals.length > 1) throw new UsageError(`unknown command ${positionals.join(' ')}`);
    if (command === 'repair' && !values.all === !values.target?.length) throw new UsageError('repair needs --target <key> (repeatable) or --all');
    const concurrency = positiveInt('concurrency', values.concurrency, 8);
    const perServerCap = positiveInt('per-server-cap', values['per-server-cap'], 10);

    // DATABASE_URL, or the embedded PostgreSQL of `npm start` when it is unset (and running).
    const database = await resolveCliDatabase(env, io.cwd);
    if (database.embedded) io.stderr.write(`DATABASE_URL is unset: using the embedded PostgreSQL of npm start on ${database.embedded.host}:${database.embedded.port}\n`);
    // The CLI needs no signing secret; the rest of the config is validated as for the API.
    const config = loadStrataConfig({ AUTH_JWT_SECRET: 'x'.repeat(32), ...database.env });

    if (command === 'repair') {
      const results = await repairChecksums({ ownerUrl: config.databaseUrl, targets: values.all ? 'all' : values.target!, apply: values.yes });
      if (values.json) say(JSON.stringify(results, null, 2));
      const drifted = results.filter((r) => r.drifted.length);
      for (const r of results.filter((x) => x.error)) say(`${r.key}: ERROR ${r.error}`);
      for (const r of drifted) {
        say(`${r.key}: ${values.yes ? `re-recorded ${r.repaired.join(', ') || 'nothing (changed meanwhile)'}` : 'would re-record'}: ${r.drifted.map(driftText).join(', ')}`);
      }
      if (!drifted.length) say(`no checksum drift on ${results.length} target(s): nothing to repair`);
      else if (!values.yes) say(`nothing changed: these files differ from what was applied. If the edits are harmless, run again with --yes`);
      return results.some((r) => r.error) || (drifted.length && !values.yes) ? 1 : 0;
    }

    if (command === 'check') {
      const violations = await checkFleetGuardrails({ url: config.databaseUrl, appRole: config.appDbUser });
      // The ledgers are read as `status` reads them: a changed applied file is a failed check too.
      const report = await runFleet({ ownerUrl: config.databaseUrl, appRole: config.appDbUser, mode: 'status', concurrency, perServerCap });
      const drifted = [...(report.control.drifted.length ? [CONTROL_TARGET_KEY] : []), ...report.results.filter((r) => r.status === 'drifted').map((r) => r.target.key)];
      if (values.json) say(JSON.stringify({ violations, drifted: report.results.filter((r) => r.status === 'drifted'), control: report.control }, null, 2));
      else for (const v of violations) say(`${v.target}${v.table ? ` ${v.table}` : ''}: ${v.problem}`);
      say(violations.length ? `${violations.length} RLS guardrail violation(s)` : 'RLS guardrails: every target passes');
      if (!values.json) for (const r of report.results.filter((x) => x.status === 'drifted')) say(line(r));
      say(drifted.length ? driftAdvice(drifted) : `checksums: every applied migration matches its file (${report.results.length} targets and the control plane)`);
      return violations.length || drifted.length ? 1 : 0;
    }

    if (command === 'up') {
      // The control plane first (and the roles and shared schema of the control server).
      await bootstrapDatabase(bootstrapOptionsFrom(config));
    }
    const progress = command === 'up' && !values.json ? new FleetProgressView(io.stdout) : undefined;
    const report = await runFleet({
      ownerUrl: config.databaseUrl,
      appRole: config.appDbUser,
      mode: command as FleetMode,
      tenantSlug: values.tenant,
      canary: values.canary,
      concurrency,
      perServerCap,
      onTargetsListed: (targets) => progress?.start(targets.length),
      onTargetDone: (r) => progress?.targetDone(r),
    }).finally(() => progress?.end());
    if (values.json) say(JSON.stringify(report, null, 2));
    else print(io.stdout, report, values.verbose || report.results.length <= 30);
    return report.ok ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError || err instanceof CliDatabaseError || err instanceof UnknownMigrationTargetError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`${(err as Error).message}\n\n${MIGRATE_USAGE}\n`);
      return 2;
    }
    throw err;
  }
}
