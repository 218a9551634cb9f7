import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliDatabaseError, resolveCliDatabase } from './cli-database';

const SECRETS = { ownerPassword: 'owner pw/+', appPassword: 'app-pw', controlPassword: 'control-pw', jwtSecret: 'j'.repeat(64) };

describe('resolveCliDatabase (how npm run migrate and tenants find their database)', () => {
  let cwd: string;
  let server: Server | undefined;

  beforeEach(() => {
    cwd = mkdtempSync(join(tmpdir(), 'strata-cli-db-'));
  });
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
    rmSync(cwd, { recursive: true, force: true });
  });

  /** Something listening on 127.0.0.1 where the embedded PostgreSQL would be. */
  async function listen(): Promise<number> {
    server = createServer((socket) => socket.destroy());
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return (server.address() as { port: number }).port;
  }

  it('uses DATABASE_URL as it is when set, and nothing else', async () => {
    const env = { DATABASE_URL: 'postgres://u:p@db.example:5432/strata' };
    expect(await resolveCliDatabase(env, cwd)).toEqual({ env });
  });

  it('finds the embedded PostgreSQL of npm start from .data/dev-secrets.json when DATABASE_URL is unset, as the worker does', async () => {
    const port = await listen();
    writeFileSync(join(cwd, 'dev-secrets.json'), JSON.stringify(SECRETS));
    const found = await resolveCliDatabase({ STRATA_DATA_DIR: cwd, EMBEDDED_PG_PORT: String(port), DB_APP_PASSWORD: 'kept' }, cwd);
    expect(found.embedded).toEqual({ host: '127.0.0.1', port, secretsFile: join(cwd, 'dev-secrets.json') });
    expect(found.env).toMatchObject({
      DATABASE_URL: `postgres://postgres:${encodeURIComponent(SECRETS.ownerPassword)}@127.0.0.1:${port}/strata`,
      // What the caller set wins over the secrets file.
      DB_APP_PASSWORD: 'kept',
      DB_CONTROL_PASSWORD: SECRETS.controlPassword,
      AUTH_JWT_SECRET: SECRETS.jwtSecret,
    });
  });

  it('says to start the API (or set DATABASE_URL) when there is no embedded database, or it is not running', async () => {
    await expect(resolveCliDatabase({ STRATA_DATA_DIR: cwd }, cwd)).rejects.toThrow(CliDatabaseError);
    await expect(resolveCliDatabase({ STRATA_DATA_DIR: cwd }, cwd)).rejects.toThrow(/no embedded database was found .*start the API first \(npm start\)/);
    writeFileSync(join(cwd, 'dev-secrets.json'), JSON.stringify(SECRETS));
    const port = await listen();
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    await expect(resolveCliDatabase({ STRATA_DATA_DIR: cwd, EMBEDDED_PG_PORT: String(port) }, cwd)).rejects.toThrow(
      new RegExp(`embedded PostgreSQL \\(127\\.0\\.0\\.1:${port}\\) is not running: start the API first`),
    );
  });
});
