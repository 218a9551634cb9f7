import { Client } from 'pg';
import { verifyAuditChain, type AuditChainReport, type AuditQuery } from '#strata/audit';
import { runAuditCli } from '../../apps/cli/src/audit-cli';
import type { TestApp } from './test-app';

/** Audit entries of a test app as the owner reads them, oldest first. */
export async function auditRows(owner: Client, where = 'true', params: unknown[] = []): Promise<Array<Record<string, any>>> {
  return (await owner.query(`SELECT * FROM control.audit_log WHERE ${where} ORDER BY seq`, params)).rows;
}

/** verifyAuditChain over an owner connection. */
export function verifyWith(owner: Client): Promise<AuditChainReport> {
  const query: AuditQuery = async <R>(sql: string, params: unknown[]) => (await owner.query(sql, params)).rows as R[];
  return verifyAuditChain(query);
}

/** `npm run audit -- <args>` in process, against the test app's database. */
export async function auditCli(t: TestApp, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { text: '', write(s: string) { this.text += s; return true; } };
  const err = { text: '', write(s: string) { this.text += s; return true; } };
  const code = await runAuditCli(args, { DATABASE_URL: t.db.ownerUrl, DB_APP_USER: t.db.appRole }, { stdout: out, stderr: err });
  return { code, stdout: out.text, stderr: err.text };
}

/**
 * Changes a stored entry as only the table's owner can: with the append-only trigger disabled for
 * the statement's transaction. What an attacker with the owner's password would do.
 */
export async function tamper(owner: Client, sql: string, params: unknown[] = []): Promise<void> {
  await owner.query('BEGIN');
  try {
    await owner.query('ALTER TABLE control.audit_log DISABLE TRIGGER audit_log_append_only');
    await owner.query(sql, params);
    await owner.query('ALTER TABLE control.audit_log ENABLE TRIGGER audit_log_append_only');
    await owner.query('COMMIT');
  } catch (e) {
    await owner.query('ROLLBACK');
    throw e;
  }
}
