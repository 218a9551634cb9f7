import { loadStrataConfig } from './strata.config';

const base = { DATABASE_URL: 'postgres://o@h/db', AUTH_JWT_SECRET: 'x'.repeat(32) };

describe('configuration', () => {
  it('applies defaults', () => {
    const c = loadStrataConfig(base);
    expect(c).toMatchObject({ port: 3000, appDbUser: 'strata_app', siloPoolMax: 10, siloMaxConnections: 40, dataPoolMax: 10, tenantSetupPrepared: true });
  });

  it('turns the prepared tenant setup off with TENANT_SETUP_PREPARED=false and refuses anything but a boolean', () => {
    expect(loadStrataConfig({ ...base, TENANT_SETUP_PREPARED: 'false' }).tenantSetupPrepared).toBe(false);
    expect(loadStrataConfig({ ...base, TENANT_SETUP_PREPARED: '0' }).tenantSetupPrepared).toBe(false);
    expect(loadStrataConfig({ ...base, TENANT_SETUP_PREPARED: 'true' }).tenantSetupPrepared).toBe(true);
    expect(() => loadStrataConfig({ ...base, TENANT_SETUP_PREPARED: 'no' })).toThrow(/TENANT_SETUP_PREPARED/);
  });

  it('refuses a short signing secret, naming the variable', () => {
    expect(() => loadStrataConfig({ ...base, AUTH_JWT_SECRET: 'short' })).toThrow(/AUTH_JWT_SECRET/);
  });

  it('refuses a non-integer number, naming the variable', () => {
    expect(() => loadStrataConfig({ ...base, SILO_MAX_CONNECTIONS: 'lots' })).toThrow(/SILO_MAX_CONNECTIONS/);
  });

  it('refuses a silo budget smaller than one silo pool', () => {
    expect(() => loadStrataConfig({ ...base, SILO_POOL_MAX: '5', SILO_MAX_CONNECTIONS: '4' })).toThrow(/SILO_MAX_CONNECTIONS/);
  });

  it('needs DATABASE_URL', () => {
    expect(() => loadStrataConfig({ AUTH_JWT_SECRET: base.AUTH_JWT_SECRET })).toThrow(/DATABASE_URL/);
  });
});
