/**
 * Noisy-neighbour bench (issue 15): a quiet tenant's latency and errors alone, then while a noisy
 * tenant of the same tier on the same server floods at 10× its plan's rate limit, runs slow
 * statements and enqueues 10k jobs for the worker, in alternating rounds on one API process and one
 * worker process. See bench/README.md.
 *
 *   npm run bench:neighbours -- [--duration 15] [--rounds 2] [--tier pool] [--quiet-rate 40]
 *                               [--flood-factor 10] [--slow-rate 4] [--slow-ms 2000] [--jobs 10000]
 *
 * Targets (printed ✓/✗, not fatal): the quiet tenant's p99 with the neighbour ≤ 1.2× its p99 alone,
 * 0 errors for it; the noisy tenant is the one that gets 429s.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Tier } from '#strata/control-plane';
import type { BenchDatabase } from './bench-database';
import { runBench } from './bench-run';
import { call, forkApiChild } from './api-child';
import { OpenLoop, statsOf, type LatencyStats, type PlannedRequest } from './open-loop';
import type { FleetServerReady } from './fleet-server';
import { INVOICE_OVERDUE_QUEUE } from '../apps/worker/src/invoice-overdue.constants';

const TARGET_P99_RATIO = 1.2;
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

interface Options {
  duration: number;
  rounds: number;
  tier: Tier;
  quietRate: number;
  floodFactor: number;
  slowRate: number;
  slowMs: number;
  jobs: number;
  plan: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: 'string' },
      rounds: { type: 'string' },
      tier: { type: 'string' },
      'quiet-rate': { type: 'string' },
      'flood-factor': { type: 'string' },
      'slow-rate': { type: 'string' },
      'slow-ms': { type: 'string' },
      jobs: { type: 'string' },
      plan: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm run bench:neighbours -- [--duration 15] [--rounds 2] [--tier pool] [--quiet-rate 40] [--flood-factor 10] [--slow-rate 4] [--slow-ms 2000] [--jobs 10000] [--plan standard]',
    );
    process.exit(0);
  }
  const num = (v: string | undefined, fallback: number, min: number, name: string) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  const tier = (values.tier ?? 'pool') as Tier;
  if (!['pool', 'bridge', 'silo'].includes(tier)) throw new Error('--tier must be pool, bridge or silo');
  return {
    duration: num(values.duration, 15, 1, 'duration'),
    rounds: num(values.rounds, 2, 1, 'rounds'),
    tier,
    quietRate: num(values['quiet-rate'], 40, 1, 'quiet-rate'),
    floodFactor: num(values['flood-factor'], 10, 1, 'flood-factor'),
    slowRate: num(values['slow-rate'], 4, 0, 'slow-rate'),
    slowMs: num(values['slow-ms'], 2000, 0, 'slow-ms'),
    jobs: num(values.jobs, 10_000, 0, 'jobs'),
    plan: values.plan ?? 'standard',
  };
}

const log = (msg: string) => console.log(`[bench:neighbours] ${msg}`);

interface Actor {
  slug: string;
  id: string;
  token: string;
  projectId: string;
}

function envFor(db: BenchDatabase): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: process.env.NODE_ENV ?? 'production',
    DATABASE_URL: db.ownerUrl,
    DB_APP_USER: db.appRole,
    AUTH_JWT_SECRET: `bench-${db.runId}-${'x'.repeat(40)}`,
    JOBS_PREFIX: `strata-bench-${db.runId}`,
    STRATA_BENCH_NEIGHBOURS: '1',
    INVOICE_OVERDUE_SWEEP_CRON: 'off',
    LOG_LEVEL: 'warn',
    // Each tenant sends as one user: a user limit (default 20/s) would refuse the quiet tenant's 40/s
    // and hit the neighbour before its plan's limit. What is measured is the tenant's plan limit.
    RATE_LIMIT_USER_PER_SECOND: '100000',
  };
  for (const k of ['DATA_POOL_MAX', 'SILO_POOL_MAX', 'SILO_MAX_CONNECTIONS', 'DB_APP_PASSWORD', 'AUTH_JWKS_URL', 'AUTH_JWT_ISSUER', 'PORT', 'REGISTRY_CACHE_TTL_MS']) {
    delete env[k];
  }
  return env;
}

async function actor(base: string, adminToken: string, db: BenchDatabase, name: string, opts: Options): Promise<Actor> {
  const slug = db.slug(name);
  const created = await call<{ id: string }>(base, 'POST', '/admin/tenants', { token: adminToken, body: { slug, name, tier: opts.tier, plan: opts.plan } });
  const email = `owner@${slug}.bench.test`;
  const password = 'bench-password-123';
  await call(base, 'POST', `/admin/tenants/${created.id}/users`, { token: adminToken, body: { email, password, role: 'owner' } });
  const { access_token: token } = await call<{ access_token: string }>(base, 'POST', '/auth/login', { tenant: slug, body: { email, password }, expect: 200 });
  const project = await call<{ id: string }>(base, 'POST', '/projects', { token, tenant: slug, body: { name: `${name} project` } });
  return { slug, id: created.id, token, projectId: project.id };
}

const read = (a: Actor, path: string, op: string): PlannedRequest => ({
  op,
  method: 'GET',
  path,
  headers: { authorization: `Bearer ${a.token}`, 'x-tenant': a.slug },
});

function loop(base: string, name: string, rate: number, durationMs: number, plan: () => PlannedRequest, maxInFlight = 64): OpenLoop {
  return new OpenLoop({
    name,
    origin: base,
    rate,
    plan,
    maxRequests: Number.MAX_SAFE_INTEGER,
    maxDurationMs: durationMs,
    maxInFlight,
    connections: Math.min(maxInFlight, 64),
    timeoutMs: 30_000,
  });
}

interface PhaseResult {
  phase: 'alone' | 'neighbour';
  quiet: LatencyStats;
  noisy?: { flood: LatencyStats; slow: LatencyStats; jobsEnqueued: number; jobsDone: number };
}

async function stopWorker(worker: ChildProcess): Promise<void> {
  if (worker.exitCode !== null || worker.signalCode !== null) return;
  const exited = new Promise((r) => worker.once('exit', r));
  worker.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
}

/** Every key of the run's JOBS_PREFIX (queues and the fairness counters). */
async function dropKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

const statuses = (s: LatencyStats, total: number) =>
  `${total - s.failed} ok${Object.entries(s.failures)
    .map(([code, n]) => `, ${n}× ${code === '0' ? 'network/timeout' : code}`)
    .join('')}`;

const options = parseOptions(process.argv.slice(2));
void runBench('neighbours', async ({ db, logFd, onCleanup }) => {
  const opts = options;
  const env = envFor(db);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const queue = new Queue(INVOICE_OVERDUE_QUEUE, { prefix: env.JOBS_PREFIX, connection: redis.duplicate() });
  onCleanup(async () => {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
    await dropKeys(redis, `${env.JOBS_PREFIX}:*`);
    redis.disconnect();
  });
  const server = await forkApiChild<FleetServerReady>(join(__dirname, 'fleet-server.js'), env, ['ignore', logFd, logFd, 'ipc'], 'API child');
  onCleanup(() => server.stop());
  const worker = fork(join(__dirname, '..', 'apps', 'worker', 'src', 'main.js'), [], { env, stdio: ['ignore', logFd, logFd, 'ipc'] });
  onCleanup(() => stopWorker(worker));
  const { base, ready } = server;
  log(`API child pid ${ready.pid} on ${base}, worker pid ${worker.pid}; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);
  log(`capacity settings: ${JSON.stringify(ready.settings)}`);

  const plans = await call<{ id: string; rateLimitPerSecond: number | null }[]>(base, 'GET', '/admin/plans', { token: ready.adminToken });
  const limit = plans.find((p) => p.id === opts.plan)?.rateLimitPerSecond;
  if (!limit) throw new Error(`plan ${opts.plan} has no rate limit to exceed`);
  const floodRate = limit * opts.floodFactor;
  const quiet = await actor(base, ready.adminToken, db, 'quiet', opts);
  const noisy = await actor(base, ready.adminToken, db, 'noisy', opts);
  log(
    `${opts.tier} tenants on plan ${opts.plan} (${limit} req/s): quiet reads at ${opts.quietRate}/s; the neighbour floods at ${floodRate}/s, ` +
      `runs ${opts.slowRate}/s statements of ${opts.slowMs} ms and enqueues ${opts.jobs} jobs`,
  );
  const quietRead = () => read(quiet, `/projects/${quiet.projectId}`, 'quiet');
  const ms = opts.duration * 1000;

  // Warm-up: both tenants' pools, caches and JIT, no measurement.
  const warm = loop(base, 'warm', opts.quietRate * 2, 2000, quietRead);
  warm.start();
  await warm.stop();

  const results: PhaseResult[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const alone = loop(base, 'quiet', opts.quietRate, ms, quietRead);
    alone.start();
    await new Promise((res) => setTimeout(res, ms));
    await alone.stop();
    results.push({ phase: 'alone', quiet: statsOf(alone.samples) });

    const enqueued = opts.jobs ? (await call<{ enqueued: number }>(base, 'POST', '/bench/neighbours/jobs', { token: noisy.token, tenant: noisy.slug, body: { n: opts.jobs }, timeoutMs: 120_000 })).enqueued : 0;
    const q = loop(base, 'quiet', opts.quietRate, ms, quietRead);
    const flood = loop(base, 'flood', floodRate, ms, () => read(noisy, `/projects/${noisy.projectId}`, 'flood'), 256);
    const slow = opts.slowRate ? loop(base, 'slow', opts.slowRate, ms, () => read(noisy, `/bench/neighbours/slow?ms=${opts.slowMs}`, 'slow'), 64) : undefined;
    for (const l of [q, flood, slow]) l?.start();
    await new Promise((res) => setTimeout(res, ms));
    await Promise.all([q, flood, slow].map((l) => l?.stop()));
    const counts = await queue.getJobCounts('completed', 'failed');
    results.push({
      phase: 'neighbour',
      quiet: statsOf(q.samples),
      noisy: { flood: statsOf(flood.samples), slow: statsOf(slow?.samples ?? []), jobsEnqueued: enqueued, jobsDone: (counts.completed ?? 0) + (counts.failed ?? 0) },
    });
    // The next "alone" phase starts without the neighbour's leftover jobs.
    await queue.obliterate({ force: true });
    log(`round ${r + 1}: ${JSON.stringify(results.slice(-2).map((p) => ({ phase: p.phase, p50: p.quiet.p50.toFixed(1), p99: p.quiet.p99.toFixed(1), failed: p.quiet.failed })))}`);
  }

  console.log('\n| round | phase | quiet: requests | quiet p50 ms | quiet p99 ms | quiet max ms | quiet errors | neighbour flood | neighbour slow statements | neighbour jobs done / enqueued |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  results.forEach((p, i) => {
    const n = p.noisy;
    console.log(
      `| ${Math.floor(i / 2) + 1} | ${p.phase} | ${p.quiet.count} | ${p.quiet.p50.toFixed(1)} | ${p.quiet.p99.toFixed(1)} | ${p.quiet.max.toFixed(0)} | ${p.quiet.failed} | ` +
        `${n ? statuses(n.flood, n.flood.count) : '—'} | ${n ? statuses(n.slow, n.slow.count) : '—'} | ${n ? `${n.jobsDone} / ${n.jobsEnqueued}` : '—'} |`,
    );
  });
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const alone = results.filter((p) => p.phase === 'alone');
  const withN = results.filter((p) => p.phase === 'neighbour');
  const ratio = avg(withN.map((p) => p.quiet.p99)) / avg(alone.map((p) => p.quiet.p99));
  const quietErrors = withN.reduce((a, p) => a + p.quiet.failed, 0);
  const noisy429 = withN.reduce((a, p) => a + (p.noisy!.flood.failures['429'] ?? 0) + (p.noisy!.slow.failures['429'] ?? 0), 0);
  const quiet429 = results.reduce((a, p) => a + (p.quiet.failures['429'] ?? 0), 0);
  const mark = (ok: boolean) => (ok ? '✓' : '✗');
  console.log(
    `\nquiet p99 with the neighbour / alone: ${ratio.toFixed(2)}× (target ≤ ${TARGET_P99_RATIO} ${mark(ratio <= TARGET_P99_RATIO)}); ` +
      `quiet errors with the neighbour: ${quietErrors} (target 0 ${mark(quietErrors === 0)}); 429s: neighbour ${noisy429}, quiet ${quiet429} ${mark(noisy429 > 0 && quiet429 === 0)}`,
  );
  return 0;
});
