import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { runTenantsCli } from '../../apps/cli/src/tenants-cli';
import { cliOutput } from '../support/cli-fixture';
import { buildCli } from '../support/fleet-fixture';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { waitFor } from '../support/tenancy-fixture';

jest.setTimeout(180_000);

const ROOT = resolve(__dirname, '../..');
const TENANTS_CLI = join(ROOT, 'dist/apps/cli/src/tenants.js');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TestApp;
let owner: Client;

// The API of this file runs no moves (MOVES_EXECUTOR off): whatever moves a tenant here is the CLI.
beforeAll(async () => {
  t = await startTestApp({ movesExecutor: false });
  owner = new Client({ connectionString: t.db.ownerUrl });
  await owner.connect();
});
afterAll(async () => {
  await owner?.end();
  await t?.close();
});

/** The environment an operator would give the CLI for this file's database. */
const cliEnv = (): NodeJS.ProcessEnv => ({
  DATABASE_URL: t.db.ownerUrl,
  DB_APP_USER: t.db.appRole,
  MOVE_LEASE_MS: '3000',
  MOVE_SOURCE_RETENTION_SECONDS: '0',
});

/** `npm run tenants -- <args>`, in process. */
async function cli(args: string[], opts: { tty?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = cliOutput();
  const stderr = cliOutput(opts.tty);
  const code = await runTenantsCli(args, cliEnv(), { stdout, stderr, pollMs: 50 });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

async function placement(tenantId: string): Promise<{ tier: string; pool_id: string; placement_epoch: number }> {
  const { rows } = await owner.query(`SELECT tier, pool_id, placement_epoch FROM control.tenants WHERE id = $1`, [tenantId]);
  return rows[0];
}

async function move(id: string): Promise<{ phase: string; lease_owner: string | null; attempts: number }> {
  const { rows } = await owner.query(`SELECT phase, lease_owner, attempts FROM control.tenant_moves WHERE id = $1`, [id]);
  return rows[0];
}

async function createProjects(tenant: OnboardedTenant, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await t.http().post('/projects').set('X-Tenant', tenant.slug).set('authorization', `Bearer ${tenant.token}`).send({ name: `p${i}` });
    expect(res.status).toBe(201);
  }
}

// The rows a move of acme copies: its 5 projects, their usage counter's row and its 16 shards (the
// first create's slow path hands each shard an allowance: migrations/tenant/0010).
const ROWS = 5 + 1 + 16;

describe('npm run tenants', () => {
  let acme: OnboardedTenant;
  let moveId: string;

  beforeAll(async () => {
    acme = await t.onboard('cli-acme', 'pool');
    await createProjects(acme, 5);
  });

  it('move <slug> --to silo --wait runs the move in the CLI itself, shows its progress and exits 0 once it is done', async () => {
    const before = await placement(acme.id);
    expect(before).toMatchObject({ tier: 'pool', pool_id: 'main-pool' });
    const { code, stdout, stderr } = await cli(['move', acme.slug, '--to', 'silo', '--wait']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const [first, last] = stdout.trim().split('\n');
    expect(first).toMatch(UUID);
    moveId = first;
    expect(last).toMatch(new RegExp(`^move ${moveId} done in \\d+:\\d\\d: the tenant is on silo/main-silo \\(${ROWS} rows copied, writes paused \\d+ ms\\)$`));
    // Not a terminal: one line per change, no redraw; the last one is the end.
    expect(stderr).toMatch(new RegExp(`move of ${acme.slug}: pool/main-pool → silo/main-silo requested \\(queued\\)`));
    expect(stderr).not.toMatch(/\r|\x1b/);
    expect(stderr).toMatch(new RegExp(`\\n\\[\\d+:\\d\\d\\]  done  ${ROWS}/${ROWS} rows \\(100%\\)  lag 0\\n$`));

    expect(await placement(acme.id)).toEqual({ tier: 'silo', pool_id: 'main-silo', placement_epoch: before.placement_epoch + 1 });
    expect(await move(moveId)).toEqual({ phase: 'done', lease_owner: null, attempts: 0 });
    // The API serves the tenant from its new home, data included.
    const list = await waitFor(
      () => t.http().get('/projects').set('X-Tenant', acme.slug).set('authorization', `Bearer ${acme.token}`),
      (r) => r.status === 200,
      10_000,
      100,
    );
    expect(list.body.items).toHaveLength(5);
  });

  it('moves <slug> lists the move, newest first', async () => {
    const { code, stdout } = await cli(['moves', acme.slug]);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^id\s+from → to\s+phase\s+rows\s+pauseMs\s+created\s+finished\s+error$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(new RegExp(`^${moveId}  pool/main-pool → silo/main-silo\\s+done\\s+${ROWS}/${ROWS}\\s+\\d+\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`));
  });

  it('a move to where the tenant already lives is refused: exit 2, move_noop', async () => {
    const { code, stdout, stderr } = await cli(['move', acme.slug, '--to', 'silo', '--wait']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^move_noop: the tenant already lives there \(tier silo, pool main-silo\)\n$/);
  });

  it('an unknown slug: exit 2, tenant_not_found', async () => {
    const { code, stderr } = await cli(['move', 'no-such-tenant', '--to', 'bridge']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^tenant_not_found: no tenant with slug no-such-tenant\n$/);
    expect((await cli(['moves', 'no-such-tenant'])).stderr).toMatch(/^tenant_not_found: /);
  });

  it('bad usage: exit 2 with the usage', async () => {
    for (const args of [[], ['move', acme.slug], ['move', acme.slug, '--to', 'mars'], ['frobnicate', 'x'], ['cancel', 'not-a-uuid'], ['moves', acme.slug, '--bogus']]) {
      const { code, stderr } = await cli(args);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(stderr).toMatch(/usage: npm run tenants -- <command>/);
    }
    const pool = await cli(['move', acme.slug, '--to', 'bridge', '--pool', 'no-such-pool']);
    expect({ code: pool.code, stderr: pool.stderr }).toEqual({ code: 2, stderr: 'pool_not_found: no bridge pool no-such-pool is registered\n' });
  });

  it('without --wait the CLI runs nothing and exits 0 after printing the id; wait <id> then runs it to the end (on a TTY: a bar redrawn in place)', async () => {
    const before = await placement(acme.id);
    const { code, stdout } = await cli(['move', acme.slug, '--to', 'bridge']);
    expect(code).toBe(0);
    const id = stdout.trim();
    expect(id).toMatch(UUID);
    // No executor anywhere: the move stays queued, unclaimed.
    await new Promise((r) => setTimeout(r, 700));
    expect(await move(id)).toEqual({ phase: 'queued', lease_owner: null, attempts: 0 });

    const waited = await cli(['wait', id], { tty: true });
    expect(waited.code).toBe(0);
    expect(waited.stdout).toMatch(new RegExp(`^move ${id} done in .*: the tenant is on bridge/main-bridge \\(${ROWS} rows copied`));
    const frames = waited.stderr.split('\r\x1b[2K').filter(Boolean);
    expect(frames.length).toBeGreaterThan(1);
    expect(frames[0]).toMatch(/^queued\s+1\/6 \[░+\]  --%  0\/0 rows  0:00$/);
    expect(frames[frames.length - 1]).toMatch(new RegExp(`^done\\s+\\[█+\\] 100%  ${ROWS}/${ROWS} rows  lag 0  \\d+:\\d\\d\\n$`));
    expect(await placement(acme.id)).toEqual({ tier: 'bridge', pool_id: 'main-bridge', placement_epoch: before.placement_epoch + 1 });
  });

  it('cancel <id> --wait rolls a queued move back: exit 0, the tenant stays; a cancelled move makes wait exit 1', async () => {
    const requested = await cli(['move', acme.slug, '--to', 'pool']);
    const id = requested.stdout.trim();
    const cancelled = await cli(['cancel', id, '--wait']);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(new RegExp(`move ${id} cancelled after .*: rolled back, the tenant stays on bridge/main-bridge\\n$`));
    expect(await move(id)).toMatchObject({ phase: 'cancelled' });
    expect(await placement(acme.id)).toMatchObject({ tier: 'bridge', pool_id: 'main-bridge' });

    const waited = await cli(['wait', id]);
    expect(waited.code).toBe(1);
    expect(waited.stderr).toMatch(/cancelled after .*: rolled back/);
    const again = await cli(['cancel', id]);
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 2, stderr: 'move_not_cancellable: a move in phase cancelled can no longer be cancelled\n' });
  });
});

describe('the compiled CLI (npm run tenants)', () => {
  beforeAll(() => buildCli(), 120_000);

  function spawnCli(args: string[]) {
    const child = spawn(process.execPath, [TENANTS_CLI, ...args], { cwd: ROOT, env: { ...process.env, ...cliEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
    return { child, done, output: () => ({ stdout, stderr }) };
  }

  it('exits 2 with the code of a refused request', async () => {
    const { code, stderr } = await spawnCli(['move', 'no-such-tenant', '--to', 'silo']).done;
    expect({ code, stderr }).toEqual({ code: 2, stderr: 'tenant_not_found: no tenant with slug no-such-tenant\n' });
  });

  it('Ctrl-C during --wait only stops waiting (exit 130); the move goes on and another executor finishes it', async () => {
    const big = await t.onboard('cli-big', 'pool');
    await owner.query(`INSERT INTO shared.projects (tenant_id, name) SELECT $1, 'p' || g FROM generate_series(1, 30000) g`, [big.id]);
    const run = spawnCli(['move', big.slug, '--to', 'bridge', '--wait']);
    // Interrupt once the CLI's own executor is at work on the move.
    await waitFor(async () => run.output().stderr, (s) => /provisioning|copying/.test(s), 60_000, 20);
    const id = run.output().stdout.trim().split('\n')[0];
    expect(id).toMatch(UUID);
    run.child.kill('SIGINT');
    const exit = await run.done;
    expect(exit.code).toBe(130);
    expect(exit.stderr).toMatch(new RegExp(`stopped waiting; move ${id} goes on .*This process was running it: its lease runs out within 3 s`));
    const left = await move(id);
    expect(['provisioning', 'copying', 'catching_up', 'verifying']).toContain(left.phase);
    expect(left.lease_owner).not.toBeNull();

    // Another process (here `wait`) takes the move over once the lease has run out and finishes it.
    const resumed = await cli(['wait', id]);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/the tenant is on bridge\/main-bridge \(30,000 rows copied/);
    expect(await placement(big.id)).toMatchObject({ tier: 'bridge', pool_id: 'main-bridge' });
    const [{ n }] = (await owner.query(`SELECT count(*)::int AS n FROM control.tenants WHERE id = $1 AND tier = 'bridge'`, [big.id])).rows;
    expect(n).toBe(1);
  });
});
