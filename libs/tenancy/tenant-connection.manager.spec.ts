import { tenantSetupSql } from './tenant-connection.manager';

const id = '3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60';

describe('tenant setup statement', () => {
  it('opens the transaction and sets search_path and the tenant for it only', () => {
    expect(tenantSetupSql({ id, schemaName: 't_acme' })).toBe(
      `BEGIN; SELECT set_config('search_path', '"t_acme"', true), set_config('app.tenant_id', '${id}', true)`,
    );
  });

  it('refuses a tenant id that is not a UUID', () => {
    expect(() => tenantSetupSql({ id: `${id}', true); DROP TABLE x; --`, schemaName: 'shared' })).toThrow(/not a UUID/);
  });

  it('refuses a schema name outside the identifier rule', () => {
    expect(() => tenantSetupSql({ id, schemaName: 'shared"; DROP SCHEMA x; --' })).toThrow(/refusing schema/);
    expect(() => tenantSetupSql({ id, schemaName: 'Upper' })).toThrow(/refusing schema/);
  });
});
