import { LeasedTable, msFromNow, rowsOf } from './leased-table.sql';

const oneLine = (sql: string) => sql.replace(/\s+/g, ' ').trim();
const work = new LeasedTable({ table: 'control.work', key: 'id', open: `state <> 'done'`, order: 'created_at', columns: 'id, state' });

describe('LeasedTable', () => {
  it('claims the oldest open row nobody holds, skipping rows another claimer has locked', () => {
    expect(oneLine(work.claim())).toBe(
      oneLine(`UPDATE control.work SET lease_owner = $1, lease_until = now() + make_interval(secs => $2 / 1000.0)
        WHERE id = (SELECT id FROM control.work WHERE state <> 'done' AND (lease_until IS NULL OR lease_until < now())
                     ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)
        RETURNING id, state`),
    );
  });

  it("adds a table's own assignments and conditions to the claim", () => {
    const sql = oneLine(work.claim({ set: ['attempts = attempts + 1'], where: ['($3::uuid IS NULL OR id = $3)'] }));
    expect(sql).toContain(`SET lease_owner = $1, lease_until = now() + make_interval(secs => $2 / 1000.0), attempts = attempts + 1 WHERE`);
    expect(sql).toContain(`WHERE state <> 'done' AND (lease_until IS NULL OR lease_until < now()) AND ($3::uuid IS NULL OR id = $3) ORDER BY`);
  });

  it('renews only a row this owner still holds and that is still open', () => {
    expect(oneLine(work.renew())).toBe(
      `UPDATE control.work SET lease_until = now() + make_interval(secs => $3 / 1000.0) WHERE id = $1 AND lease_owner = $2 AND state <> 'done' RETURNING id`,
    );
    expect(work.held).toBe(`id = $1 AND lease_owner = $2 AND state <> 'done'`);
  });

  it('releases a held row for a back-off, open or not unless asked to touch only open rows', () => {
    expect(oneLine(work.release({ set: ['error = $4'] }))).toBe(
      `UPDATE control.work SET lease_owner = NULL, lease_until = now() + make_interval(secs => $3 / 1000.0), error = $4 WHERE id = $1 AND lease_owner = $2`,
    );
    expect(oneLine(work.release({ openOnly: true }))).toBe(
      `UPDATE control.work SET lease_owner = NULL, lease_until = now() + make_interval(secs => $3 / 1000.0) WHERE id = $1 AND lease_owner = $2 AND state <> 'done'`,
    );
    expect(work.letGo).toBe('lease_owner = NULL, lease_until = NULL');
    expect(msFromNow('$5')).toBe('now() + make_interval(secs => $5 / 1000.0)');
  });
});

describe('rowsOf', () => {
  it("reads TypeORM's [rows, affected] answer to UPDATE … RETURNING and a plain row list alike", () => {
    expect(rowsOf([[{ id: 'a' }], 1])).toEqual([{ id: 'a' }]);
    expect(rowsOf([{ id: 'a' }, { id: 'b' }])).toEqual([{ id: 'a' }, { id: 'b' }]);
    expect(rowsOf([])).toEqual([]);
  });
  it('adds the checkpoint mark to a claim that asks for it, and only then', () => {
    expect(oneLine(work.claim({ checkpoint: true }))).toMatch(/RETURNING id, state, set_config\('synchronous_commit', 'off', true\) AS checkpoint_commit$/);
    expect(oneLine(work.claim())).toMatch(/RETURNING id, state$/);
  });
});
