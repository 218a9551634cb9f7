import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { AuditLog } from '#strata/audit';
import { CONTROL_DATA_SOURCE } from '#strata/control-plane';
import { auditCli, auditRows, tamper, verifyWith } from '../support/audit';
import { startTestApp, type TestApp } from '../support/test-app';

let t: TestApp;
let owner: Client;
let audit: AuditLog;

beforeAll(async () => {
  t = await startTestApp();
  owner = new Client({ connectionString: t.db.ownerUrl });
  await owner.connect();
  audit = t.app.get(AuditLog);
});
afterAll(async () => {
  await owner?.end();
  await t?.close();
});

const entry = (n: number) => ({ action: 'test.appended', actor: { type: 'system' as const, id: 'audit-chain-spec' }, details: { n } });

describe('the audit log chain', () => {
  it('appends entries with consecutive seqs, each chained to the one before, and verifies', async () => {
    const a = await audit.record(entry(1));
    const b = await audit.record(entry(2));
    expect(b.seq).toBe(a.seq + 1);
    const [ra, rb] = await auditRows(owner, 'seq = ANY($1)', [[a.seq, b.seq]]);
    expect(rb.prev_hash.equals(ra.hash)).toBe(true);
    const report = await verifyWith(owner);
    expect(report.broken).toBeNull();
    expect(report.head?.seq).toBe(b.seq);
    expect(report.checked).toBe(b.seq);
  });

  it('keeps a gapless, valid chain under concurrent appends, alone and inside callers’ transactions', async () => {
    const before = (await verifyWith(owner)).head!.seq;
    const db = t.app.get<DataSource>(CONTROL_DATA_SOURCE);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? audit.record(entry(i)) : db.transaction((em) => audit.record(entry(i), em)))),
    );
    const rows = await auditRows(owner, 'seq > $1', [before]);
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 40 }, (_, i) => before + 1 + i));
    const report = await verifyWith(owner);
    expect(report.broken).toBeNull();
    expect(report.head!.seq).toBe(before + 40);
  });

  it('leaves no gap for an entry whose transaction rolled back', async () => {
    const db = t.app.get<DataSource>(CONTROL_DATA_SOURCE);
    const before = (await verifyWith(owner)).head!.seq;
    await expect(
      db.transaction(async (em) => {
        await audit.record(entry(-1), em);
        throw new Error('the audited action failed');
      }),
    ).rejects.toThrow('the audited action failed');
    const next = await audit.record(entry(0));
    expect(next.seq).toBe(before + 1);
    expect((await verifyWith(owner)).broken).toBeNull();
  });

  it('refuses UPDATE, DELETE and TRUNCATE, to the control role and to the owner alike', async () => {
    const control = t.app.get<DataSource>(CONTROL_DATA_SOURCE);
    await expect(control.query(`UPDATE control.audit_log SET details = '{}' WHERE seq = 1`)).rejects.toThrow(/append-only/);
    await expect(control.query('DELETE FROM control.audit_log WHERE seq = 1')).rejects.toThrow(/append-only/);
    await expect(owner.query(`UPDATE control.audit_log SET action = 'test.rewritten' WHERE seq = 1`)).rejects.toThrow(/append-only/);
    await expect(owner.query('DELETE FROM control.audit_log')).rejects.toThrow(/append-only/);
    await expect(owner.query('TRUNCATE control.audit_log')).rejects.toThrow(/append-only/);
  });

  it('hashes the same whatever the session time zone says', async () => {
    await owner.query(`SET TimeZone = 'Pacific/Kiritimati'`);
    try {
      expect((await verifyWith(owner)).broken).toBeNull();
    } finally {
      await owner.query('RESET TimeZone');
    }
  });

  it('detects a tampered entry at its seq, in the verifier and in npm run audit -- verify (exit 1), and is whole again once restored', async () => {
    const target = (await audit.record({ ...entry(99), details: { n: 99, role: 'member' } })).seq;
    await audit.record(entry(100));
    await tamper(owner, `UPDATE control.audit_log SET details = '{"n": 99, "role": "owner"}' WHERE seq = $1`, [target]);
    try {
      const report = await verifyWith(owner);
      expect(report.broken).toEqual(expect.objectContaining({ seq: target, reason: 'hash_mismatch' }));
      const cli = await auditCli(t, ['verify']);
      expect(cli.code).toBe(1);
      expect(cli.stdout).toContain(`BROKEN at seq ${target}: hash_mismatch`);
    } finally {
      await tamper(owner, `UPDATE control.audit_log SET details = '{"n": 99, "role": "member"}' WHERE seq = $1`, [target]);
    }
    const cli = await auditCli(t, ['verify']);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('chain: intact');
  });

  it('detects a tampered entry whose hash was recomputed too, at the next seq', async () => {
    const target = (await audit.record(entry(200))).seq;
    await audit.record(entry(201));
    const original = (await auditRows(owner, 'seq = $1', [target]))[0];
    const rehash = `hash = control.audit_entry_hash(prev_hash, seq, id, created_at, actor_type, actor_id, on_behalf_of, tenant_id, action, request_id, details)`;
    await tamper(owner, `UPDATE control.audit_log SET details = '{"n": 666}' WHERE seq = $1; UPDATE control.audit_log SET ${rehash} WHERE seq = $1`.replaceAll('$1', String(target)));
    try {
      expect((await verifyWith(owner)).broken).toEqual(expect.objectContaining({ seq: target + 1, reason: 'prev_hash_mismatch' }));
    } finally {
      await tamper(owner, `UPDATE control.audit_log SET details = $2, hash = $3 WHERE seq = $1`, [target, original.details, original.hash]);
    }
    expect((await verifyWith(owner)).broken).toBeNull();
  });

  it('detects a removed entry as a gap in the seqs', async () => {
    const target = (await audit.record(entry(300))).seq;
    await audit.record(entry(301));
    const original = (await auditRows(owner, 'seq = $1', [target]))[0];
    await tamper(owner, 'DELETE FROM control.audit_log WHERE seq = $1', [target]);
    try {
      expect((await verifyWith(owner)).broken).toEqual(expect.objectContaining({ seq: target + 1, reason: 'seq_gap' }));
      const cli = await auditCli(t, ['verify', '--json']);
      expect(cli.code).toBe(1);
      expect(JSON.parse(cli.stdout).broken.seq).toBe(target + 1);
    } finally {
      const cols = Object.keys(original);
      await tamper(owner, `INSERT INTO control.audit_log (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, cols.map((c) => original[c]));
    }
    expect((await verifyWith(owner)).broken).toBeNull();
  });

  it('answers bad usage with exit 2 and the usage text', async () => {
    const cli = await auditCli(t, ['rewrite']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('usage: npm run audit -- verify');
  });
});
