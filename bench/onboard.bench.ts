/**
 * Onboarding latency bench: from `POST /admin/tenants` to `active` (the synchronous call answers
 * 201 once the pipeline's last step is done), N onboardings per tier, one at a time, on the local
 * server, and prints p50 / p95 per tier against the targets of issue 14. See bench/README.md.
 *
 *   npm run bench:onboard -- [--n 30] [--warmup 3]
 *
 * Exits 1 when an onboarding does not answer 201; a missed target is printed (✗), not fatal.
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Tier } from '#strata/control-plane';
import { latestVersion } from '#strata/migrator';
import { siloTemplateName } from '#strata/tenancy/platform';
import { withClient, type BenchDatabase } from './bench-database';
import { runBench } from './bench-run';
import type { MoveServerReady } from './move-server';
import { call, forkApiChild, type ApiChild } from './api-child';
import { clock, quantile } from './open-loop';

/** Request → active, ms (issue 14). */
const TARGETS: Record<Tier, number> = { pool: 20, bridge: 150, silo: 400 };
const TIERS: Tier[] = ['pool', 'bridge', 'silo'];

interface Options {
  n: number;
  warmup: number;
  gapMs: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      n: { type: 'string' },
      warmup: { type: 'string' },
      gap: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm run bench:onboard -- [--n 30] [--warmup 3] [--gap 0]\n' +
        '  --n k       measured onboardings per tier (one at a time)\n' +
        '  --warmup k  onboardings per tier before measuring (JIT, pools), not counted\n' +
        '  --gap ms    pause between onboardings (0: back to back). Background work an onboarding leaves\n' +
        '              (the next bridge spare schema, ~150 ms of DDL) then ends before the next one starts,\n' +
        '              as with onboardings that arrive apart; back to back, it competes with the next one',
    );
    process.exit(0);
  }
  const int = (v: string | undefined, fallback: number, min: number, name: string) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  return { n: int(values.n, 30, 1, 'n'), warmup: int(values.warmup, 3, 0, 'warmup'), gapMs: int(values.gap, 0, 0, 'gap') };
}

const log = (msg: string) => console.log(`[bench:onboard] ${msg}`);
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function startServer(db: BenchDatabase, logFd: number): Promise<ApiChild<MoveServerReady>> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: process.env.NODE_ENV ?? 'production',
    DATABASE_URL: db.ownerUrl,
    DB_APP_USER: db.appRole,
    AUTH_JWT_SECRET: `bench-${db.runId}-${'x'.repeat(40)}`,
  };
  // The app's defaults: inherited tuning is removed.
  for (const k of ['DATA_POOL_MAX', 'SILO_POOL_MAX', 'SILO_MAX_CONNECTIONS', 'DB_APP_PASSWORD', 'AUTH_JWKS_URL', 'AUTH_JWT_ISSUER', 'PORT', 'REDIS_URL']) {
    delete env[k];
  }
  for (const k of Object.keys(env)) if (k.startsWith('ONBOARDING_')) delete env[k];
  return forkApiChild<MoveServerReady>(join(__dirname, 'move-server.js'), env, ['ignore', logFd, logFd, 'ipc']);
}

async function waitForSiloTemplate(db: BenchDatabase): Promise<number> {
  const t0 = clock();
  const name = siloTemplateName(latestVersion('tenant'), db.appRole);
  while (clock() - t0 < 60_000) {
    const rows = await withClient(db.adminUrl, (c) => c.query<{ ok: boolean }>(`SELECT NOT datallowconn AS ok FROM pg_database WHERE datname = $1`, [name]));
    if (rows.rows[0]?.ok) return clock() - t0;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the silo template ${name} was not ready within 60 s`);
}

const options = parseOptions(process.argv.slice(2));
void runBench('onboard', async ({ db, logFd, onCleanup }) => {
  const opts = options;
  const pgVersion = await db.serverVersion();
  const server = await startServer(db, logFd);
  onCleanup(() => server.stop());
  const { base, ready } = server;
  log(`API child pid ${server.child.pid} on ${base}; PostgreSQL ${pgVersion}; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);

  const rows: string[] = [];
  let seq = 0;
  for (const tier of TIERS) {
    const onboard = async (): Promise<number> => {
      const slug = db.slug(`ob-${tier}-${seq++}`);
      const t0 = clock();
      const created = await call<{ status: string }>(base, 'POST', '/admin/tenants', { token: ready.adminToken, body: { slug, name: `bench ${slug}`, tier } });
      const ms = clock() - t0;
      if (created.status !== 'active') throw new Error(`${slug} answered status ${created.status}`);
      return ms;
    };
    // The silo template is built after the first silo onboarding, so silo always warms up once.
    for (let i = 0; i < Math.max(opts.warmup, tier === 'silo' ? 1 : 0); i++) await onboard();
    // Silo copies a template of this release once the server has one (built in the background
    // after the first silo onboarding): measure that steady state, not the first few.
    if (tier === 'silo') log(`silo template ready after ${fmt(await waitForSiloTemplate(db))}`);
    const samples: number[] = [];
    for (let i = 0; i < opts.n; i++) {
      if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      samples.push(await onboard());
    }
    samples.sort((a, b) => a - b);
    const p50 = quantile(samples, 0.5);
    const p95 = quantile(samples, 0.95);
    const hit = p50 < TARGETS[tier] ? '✓' : '✗';
    rows.push(
      `${tier.padEnd(6)} n=${String(opts.n).padEnd(4)} p50 ${fmt(p50).padStart(10)}  p95 ${fmt(p95).padStart(10)}  min ${fmt(samples[0]).padStart(10)}  max ${fmt(samples[samples.length - 1]).padStart(10)}   target < ${TARGETS[tier]} ms ${hit}`,
    );
    log(`${tier}: done`);
  }
  console.log(`\nrequest → active (POST /admin/tenants answering 201), one at a time${opts.gapMs ? `, ${opts.gapMs} ms apart` : ', back to back'}, after ${opts.warmup} warm-up onboardings per tier:`);
  for (const r of rows) console.log(`  ${r}`);
  return 0;
});
