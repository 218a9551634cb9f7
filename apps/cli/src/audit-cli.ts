import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { loadStrataConfig } from '#strata/common';
import { verifyAuditChain, type AuditQuery } from '#strata/audit';
import { CliDatabaseError, resolveCliDatabase } from './cli-database';
import type { ProgressStream } from './move-progress';

export const AUDIT_USAGE = `usage: npm run audit -- verify [--json]

  verify   walk the audit log (control.audit_log) in seq order, recompute every entry's hash with
           the database's own control.audit_entry_hash and check that each one chains to the one
           before it. Prints the entries checked, the head (seq and hash: note it down somewhere
           else — a later verify whose head is older, or differs at that seq, shows entries cut off
           or rewritten) and the first broken seq.

  --json   print the report as JSON

Exit status: 0 the chain is intact; 1 it is broken; 2 bad usage or no database.

Needs DATABASE_URL (owner connection to the control-plane database); with DATABASE_URL unset, the
embedded PostgreSQL of 'npm start' (.data/dev-secrets.json, EMBEDDED_PG_PORT).`;

export interface AuditCliIo {
  stdout: ProgressStream;
  stderr: ProgressStream;
  /** Where the embedded database's .data is looked for (default process.cwd()). */
  cwd?: string;
}

class UsageError extends Error {}

/** `npm run audit -- <args>`: returns the exit status. */
export async function runAuditCli(args: string[], env: NodeJS.ProcessEnv, io: AuditCliIo): Promise<number> {
  const say = (s = '') => io.stdout.write(`${s}\n`);
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
    });
    if (values.help) {
      say(AUDIT_USAGE);
      return 0;
    }
    if (positionals.length !== 1 || positionals[0] !== 'verify') throw new UsageError(`unknown command ${positionals.join(' ') || '(none)'}`);

    const database = await resolveCliDatabase(env, io.cwd);
    if (database.embedded) io.stderr.write(`DATABASE_URL is unset: using the embedded PostgreSQL of npm start on ${database.embedded.host}:${database.embedded.port}\n`);
    // The CLI needs no signing secret; the rest of the config is validated as for the API.
    const config = loadStrataConfig({ AUTH_JWT_SECRET: 'x'.repeat(32), ...database.env });
    const client = new Client({ connectionString: config.databaseUrl, application_name: 'strata-audit-verify' });
    await client.connect();
    try {
      // One snapshot for the whole walk: appends made meanwhile are neither half seen nor a false break.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const query: AuditQuery = async <R>(sql: string, params: unknown[]) => (await client.query(sql, params)).rows as R[];
      const report = await verifyAuditChain(query);
      await client.query('COMMIT');
      if (values.json) say(JSON.stringify(report, null, 2));
      else {
        say(`entries checked: ${report.checked}`);
        say(report.head ? `head: seq ${report.head.seq} hash ${report.head.hash}` : 'head: (the log is empty)');
        say(report.broken ? `BROKEN at seq ${report.broken.seq}: ${report.broken.reason}: ${report.broken.detail}` : 'chain: intact');
      }
      return report.broken ? 1 : 0;
    } finally {
      await client.end();
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof CliDatabaseError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`${(err as Error).message}\n\n${AUDIT_USAGE}\n`);
      return 2;
    }
    throw err;
  }
}
