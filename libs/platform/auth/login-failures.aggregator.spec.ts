import type { AuditEntryInput, AuditTrail } from '#strata/control-plane';
import { LOGIN_FAILURE_MAX_KEYS, LoginFailures } from './login-failures.aggregator';

/** An audit port that keeps what it is handed. */
function recordingAudit(): AuditTrail & { entries: AuditEntryInput[] } {
  const entries: AuditEntryInput[] = [];
  return {
    entries,
    async record(entry) {
      entries.push(entry);
      return { seq: entries.length, id: `id-${entries.length}`, createdAt: new Date() };
    },
  };
}

describe('LoginFailures', () => {
  it('writes one entry per tenant and account per window, with the count, and starts a fresh window', async () => {
    const audit = recordingAudit();
    const failures = new LoginFailures(audit);
    for (let i = 0; i < 4; i++) failures.note('tenant-a', 'Ada@Example.test');
    failures.note('tenant-b', 'ada@example.test');
    failures.note(null, 'ada@example.test');
    expect(await failures.flush()).toBe(3);
    const counts = audit.entries.map((e) => [e.tenantId, e.details?.email, e.details?.count]);
    expect(counts).toEqual(
      expect.arrayContaining([
        ['tenant-a', 'ada@example.test', 4],
        ['tenant-b', 'ada@example.test', 1],
        [null, 'ada@example.test', 1],
      ]),
    );
    expect(audit.entries.every((e) => e.action === 'auth.login_failed' && e.actor.type === 'anonymous')).toBe(true);
    expect(await failures.flush()).toBe(0);
  });

  it('sums a spray over more addresses than it counts into one overflow entry per tenant', async () => {
    const audit = recordingAudit();
    const failures = new LoginFailures(audit);
    for (let i = 0; i < LOGIN_FAILURE_MAX_KEYS + 250; i++) failures.note('tenant-a', `user${i}@spray.test`);
    expect(await failures.flush()).toBe(LOGIN_FAILURE_MAX_KEYS + 1);
    const overflow = audit.entries.filter((e) => e.details?.overflow);
    expect(overflow).toHaveLength(1);
    expect(overflow[0].details).toEqual(expect.objectContaining({ email: null, count: 250 }));
  });

  it('never throws when the log cannot be written: that window is lost and logged, the next one starts empty', async () => {
    const failures = new LoginFailures({ record: () => Promise.reject(new Error('control plane down')) });
    failures.note('tenant-a', 'a@b.test');
    await expect(failures.flush()).resolves.toBe(0);
    await expect(failures.flush()).resolves.toBe(0);
  });
});
