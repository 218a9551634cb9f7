import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { runTenantsCli } from '../../apps/cli/src/tenants-cli';
import { startTestApp, type TestApp } from './test-app';

/** A stream the CLI writes to, keeping what was written; `isTTY` as asked (a TTY gets a bar redrawn in place). */
export function cliOutput(isTTY = false) {
  return {
    isTTY,
    columns: 100,
    text: '',
    write(chunk: string) {
      this.text += chunk;
      return true;
    },
  };
}

export interface CliTestApp {
  t: TestApp;
  /** A superuser connection to the test database, for reading the control plane directly. */
  owner: Client;
  /** The local storage root the API and the in-process CLI share (undefined without `files`). */
  filesRoot?: string;
  /** `npm run tenants -- <args>` in process, with the environment an operator would give it for this database. */
  cli(args: string[], opts?: { tty?: boolean; env?: NodeJS.ProcessEnv }): Promise<{ code: number; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

/**
 * The API of a tenants-CLI test file, with no executors of its own (MOVES_EXECUTOR off): whatever a
 * test sees moved, exported or deleted, the CLI did. With `files`, a local storage root read by
 * StorageModule.forRoot() of the API and of the in-process CLI alike (one storage for both), set in
 * process.env for the file and put back by close().
 */
export async function startCliTestApp(options: { files?: string } = {}): Promise<CliTestApp> {
  const saved = { FILES_DRIVER: process.env.FILES_DRIVER, FILES_ROOT: process.env.FILES_ROOT };
  const filesRoot = options.files ? mkdtempSync(join(tmpdir(), `strata-cli-${options.files}-`)) : undefined;
  if (filesRoot) Object.assign(process.env, { FILES_DRIVER: 'local', FILES_ROOT: filesRoot });
  const t = await startTestApp({ movesExecutor: false });
  const owner = new Client({ connectionString: t.db.ownerUrl });
  await owner.connect();
  return {
    t,
    owner,
    filesRoot,
    async cli(args, opts = {}) {
      const stdout = cliOutput();
      const stderr = cliOutput(opts.tty);
      const env = { DATABASE_URL: t.db.ownerUrl, DB_APP_USER: t.db.appRole, REDIS_URL: t.config.redisUrl, MOVE_LEASE_MS: '3000', ...opts.env };
      const code = await runTenantsCli(args, env, { stdout, stderr, pollMs: 50 });
      return { code, stdout: stdout.text, stderr: stderr.text };
    },
    async close() {
      await owner.end().catch(() => undefined);
      await t.close();
      if (filesRoot) rmSync(filesRoot, { recursive: true, force: true });
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    },
  };
}
