/**
 * Fleet-scale bench (issue 15): onboards a fleet on the local server (default 9,000 pool + 900
 * bridge + 100 silo tenants, timed), then drives random-tenant reads over HTTP from
 *   - `small`: 100 tenants of the fleet, in the fleet's tier proportions (at least one of each);
 *   - `fleet`: every tenant,
 * the same load (connections, duration, route) in paired, interleaved rounds on one API process.
 * During every run it samples the run's connections from pg_stat_activity; after every run it
 * reads the API's memory after a full GC, the size of /metrics and how often the control plane's
 * tenant and membership tables were read per request (registry misses). See bench/README.md.
 *
 *   npm run bench:fleet -- [--pool 9000] [--bridge 900] [--silo 100] [--small 100] [--duration 10]
 *                          [--connections 16] [--rounds 2] [--width 8]
 *
 * Targets (printed ✓/✗, not fatal): fleet ≥ 0.8× the small run's req/s, p99 ≤ 2× of it, API memory
 * growth from the small phase to the fleet phase ≤ 200 MB, connections never above the per-server cap.
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Tier } from '#strata/control-plane';
import { withClient, type BenchDatabase } from './bench-database';
import { runBench } from './bench-run';
import { call, forkApiChild, type ApiChild } from './api-child';
import { runAutocannon, type AutocannonRequest, type AutocannonResult } from './autocannon';
import { clock } from './open-loop';
import type { FleetServerReady } from './fleet-server';

const TARGET_THROUGHPUT = 0.8;
const TARGET_P99 = 2;
const TARGET_MEMORY_MB = 200;
/** pg_stat_* counters of a backend reach the views within PGSTAT_IDLE_INTERVAL (10 s) of it going idle. */
const STATS_FLUSH_MS = 11_000;

interface Options {
  pool: number;
  bridge: number;
  silo: number;
  small: number;
  duration: number;
  connections: number;
  rounds: number;
  width: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      pool: { type: 'string' },
      bridge: { type: 'string' },
      silo: { type: 'string' },
      small: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      rounds: { type: 'string' },
      width: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm run bench:fleet -- [--pool 9000] [--bridge 900] [--silo 100] [--small 100] [--duration 10] [--connections 16] [--rounds 2] [--width 8]\n' +
        '  --pool/--bridge/--silo k  the fleet onboarded per tier\n' +
        '  --small k                 tenants in the small run (same tier proportions)\n' +
        '  --width k                 onboardings in flight at once',
    );
    process.exit(0);
  }
  const int = (name: keyof Options, fallback: number, min: number): number => {
    const v = values[name];
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  return {
    pool: int('pool', 9000, 1),
    bridge: int('bridge', 900, 1),
    silo: int('silo', 100, 1),
    small: int('small', 100, 3),
    duration: int('duration', 10, 1),
    connections: int('connections', 16, 1),
    rounds: int('rounds', 2, 1),
    width: int('width', 8, 1),
  };
}

const log = (msg: string) => console.log(`[bench:fleet] ${msg}`);
const mb = (bytes: number) => bytes / (1024 * 1024);

interface FleetTenant {
  tier: Tier;
  id: string;
  slug: string;
  token?: string;
}

async function startServer(db: BenchDatabase, logFd: number): Promise<ApiChild<FleetServerReady>> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: process.env.NODE_ENV ?? 'production',
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --expose-gc`.trim(),
    DATABASE_URL: db.ownerUrl,
    DB_APP_USER: db.appRole,
    AUTH_JWT_SECRET: `bench-${db.runId}-${'x'.repeat(40)}`,
    // Tokens are signed once, after onboarding; the runs must not outlive them.
    AUTH_TOKEN_TTL_SECONDS: '7200',
    // One reader stands for each tenant's many users: its per-user bucket (20/s by default, per
    // tenant) would refuse the small run's ~19 requests/s per tenant now and then. The tenant's
    // own limit (its plan's) stays in force.
    RATE_LIMIT_USER_PER_SECOND: '1000',
  };
  // The app's defaults are what we measure: inherited tuning is removed.
  for (const k of ['DATA_POOL_MAX', 'SILO_POOL_MAX', 'SILO_MAX_CONNECTIONS', 'DB_APP_PASSWORD', 'AUTH_JWKS_URL', 'AUTH_JWT_ISSUER', 'PORT', 'REGISTRY_CACHE_TTL_MS']) {
    delete env[k];
  }
  return forkApiChild<FleetServerReady>(join(__dirname, 'fleet-server.js'), env, ['ignore', logFd, logFd, 'ipc'], 'fleet server');
}

let nextRequest = 0;
/** One IPC request to the fleet server, answered by a message with the same id. */
function ask<T>(server: ApiChild<FleetServerReady>, msg: Record<string, unknown>, answer: string): Promise<T> {
  const id = ++nextRequest;
  return new Promise<T>((resolve) => {
    const onMessage = (m: { type?: string; id?: number } & T) => {
      if (m?.type === answer && m.id === id) {
        server.child.off('message', onMessage);
        resolve(m);
      }
    };
    server.child.on('message', onMessage);
    server.child.send({ ...msg, id });
  });
}

async function inParallel(count: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/** The onboarded fleet, per tier in creation order; prints how long each tier took. */
async function onboardFleet(server: ApiChild<FleetServerReady>, db: BenchDatabase, opts: Options): Promise<FleetTenant[]> {
  const fleet: FleetTenant[] = [];
  for (const [tier, count] of [['silo', opts.silo], ['bridge', opts.bridge], ['pool', opts.pool]] as const) {
    const t0 = clock();
    let done = 0;
    await inParallel(count, opts.width, async (i) => {
      const slug = db.slug(`f${tier[0]}${i}`);
      const created = await call<{ id: string; status: string }>(server.base, 'POST', '/admin/tenants', {
        token: server.ready.adminToken,
        body: { slug, name: slug, tier, plan: 'enterprise' },
        timeoutMs: 120_000,
      });
      if (created.status !== 'active') throw new Error(`${slug} answered status ${created.status}`);
      fleet.push({ tier, id: created.id, slug });
      if (++done % 1000 === 0) log(`  ${tier}: ${done}/${count}`);
    });
    const s = (clock() - t0) / 1000;
    log(`onboarded ${count} ${tier} tenants in ${s.toFixed(1)} s (${((s * 1000) / count).toFixed(1)} ms each at width ${opts.width})`);
  }
  return fleet;
}

/**
 * One reader who is a member of every tenant, inserted directly: signing up 10k owners would be
 * 10k scrypt hashes and logins, which measures hashing, not the fleet. The guard still checks the
 * membership on every request, as for any user.
 */
async function addReader(server: ApiChild<FleetServerReady>, db: BenchDatabase, fleet: FleetTenant[]): Promise<void> {
  const userId = await withClient(db.ownerUrl, async (c) => {
    const u = await c.query<{ id: string }>(`INSERT INTO control.users (email, password_hash) VALUES ($1, '!bench-no-login') RETURNING id`, [
      `reader@${db.runId}.bench.test`,
    ]);
    await c.query(`INSERT INTO control.memberships (user_id, tenant_id, role) SELECT $1, id, 'member' FROM control.tenants WHERE id = ANY($2::uuid[])`, [
      u.rows[0].id,
      fleet.map((t) => t.id),
    ]);
    return u.rows[0].id;
  });
  for (let i = 0; i < fleet.length; i += 1000) {
    const batch = fleet.slice(i, i + 1000);
    const { tokens } = await ask<{ tokens: string[] }>(server, { type: 'sign', claims: batch.map((t) => ({ sub: userId, tid: t.id, role: 'member' })) }, 'signed');
    batch.forEach((t, j) => (t.token = tokens[j]));
  }
}

/** One request per tenant of `tenants`, in a shuffled order: every tenant's first request after onboarding. */
function everyTenantOnce(tenants: FleetTenant[]): AutocannonRequest {
  const order = [...tenants];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  let next = 0;
  return {
    method: 'GET',
    path: '/projects?limit=20',
    setupRequest: (req) => {
      const t = order[next++ % order.length];
      req.headers = { ...req.headers, authorization: `Bearer ${t.token}`, 'x-tenant': t.slug };
      return req;
    },
  };
}

/** `n` tenants in the fleet's tier proportions, at least one of each tier. */
function pickSmall(fleet: FleetTenant[], n: number): FleetTenant[] {
  const byTier = new Map<Tier, FleetTenant[]>();
  for (const t of fleet) byTier.set(t.tier, [...(byTier.get(t.tier) ?? []), t]);
  const out: FleetTenant[] = [];
  for (const [, list] of byTier) out.push(...list.slice(0, Math.max(1, Math.round((list.length / fleet.length) * n))));
  return out.slice(0, Math.max(n, byTier.size));
}

interface RunResult {
  name: string;
  tenants: number;
  result: AutocannonResult;
  maxConnections: number;
  controlReadsPerRequest: number;
  rssMb: number;
  heapMb: number;
  metricsKb: number;
  metricsLines: number;
}

/** `GET /projects?limit=20` of a tenant drawn at random for every request. */
function randomTenantRead(tenants: FleetTenant[]): AutocannonRequest {
  return {
    method: 'GET',
    path: '/projects?limit=20',
    setupRequest: (req) => {
      const t = tenants[Math.floor(Math.random() * tenants.length)];
      req.headers = { ...req.headers, authorization: `Bearer ${t.token}`, 'x-tenant': t.slug };
      return req;
    },
  };
}

async function connectionsNow(db: BenchDatabase): Promise<number> {
  return withClient(db.adminUrl, async (c) => {
    const r = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (datname = $1 OR datname LIKE $2)`,
      [db.name, `%${db.runId}%`],
    );
    return Number(r.rows[0].n);
  });
}

async function controlReads(db: BenchDatabase): Promise<number> {
  return withClient(db.ownerUrl, async (c) => {
    const r = await c.query<{ n: string }>(
      `SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0) AS n FROM pg_stat_user_tables
        WHERE schemaname = 'control' AND relname IN ('tenants', 'memberships')`,
    );
    return Number(r.rows[0].n);
  });
}

async function measure(
  server: ApiChild<FleetServerReady>,
  db: BenchDatabase,
  name: string,
  tenants: FleetTenant[],
  opts: Options,
  load: { requests: AutocannonRequest[]; duration?: number; amount?: number } = { requests: [randomTenantRead(tenants)], duration: opts.duration },
): Promise<RunResult> {
  const before = await controlReads(db);
  let maxConnections = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxConnections = Math.max(maxConnections, await connectionsNow(db));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const result = await runAutocannon({ url: server.base, connections: opts.connections, ...load });
  sampling = false;
  await sampler;
  await new Promise((r) => setTimeout(r, STATS_FLUSH_MS));
  const reads = (await controlReads(db)) - before;
  const { memory } = await ask<{ memory: NodeJS.MemoryUsage }>(server, { type: 'memory' }, 'memory');
  const metrics = await fetch(`${server.base}/metrics`).then((r) => r.text());
  return {
    name,
    tenants: tenants.length,
    result,
    maxConnections,
    controlReadsPerRequest: reads / Math.max(1, result.requests.total),
    rssMb: mb(memory.rss),
    heapMb: mb(memory.heapUsed),
    metricsKb: Buffer.byteLength(metrics) / 1024,
    metricsLines: metrics.split('\n').length,
  };
}

function row(r: RunResult): string {
  const errors = r.result.errors + r.result.timeouts + r.result.non2xx;
  const statuses = Object.entries(r.result.statusCodeStats ?? {})
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, { count }]) => `${count} × ${code}`);
  const errorText = statuses.length ? `${errors} (${statuses.join(', ')})` : String(errors);
  return `| ${r.name} | ${r.tenants} | ${r.result.requests.average.toFixed(0)} | ${r.result.latency.p50} | ${r.result.latency.p99} | ${errorText} | ${r.maxConnections} | ${(100 * r.controlReadsPerRequest).toFixed(2)} % | ${r.rssMb.toFixed(0)} | ${r.heapMb.toFixed(0)} | ${r.metricsKb.toFixed(0)} KB / ${r.metricsLines} |`;
}

const options = parseOptions(process.argv.slice(2));
void runBench('fleet', async ({ db, logFd, onCleanup }) => {
  const opts = options;
  const server = await startServer(db, logFd);
  onCleanup(() => server.stop());
  const maxConnSetting = await withClient(db.adminUrl, async (c) => (await c.query<{ max_connections: string }>('SHOW max_connections')).rows[0].max_connections);
  log(`API child pid ${server.ready.pid} on ${server.base}; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}; server max_connections ${maxConnSetting}`);
  log(`capacity settings: ${JSON.stringify(server.ready.settings)}`);
  const t0 = clock();
  const fleet = await onboardFleet(server, db, opts);
  log(`fleet of ${fleet.length} onboarded in ${((clock() - t0) / 1000).toFixed(1)} s`);
  await db.analyze();
  await addReader(server, db, fleet);
  const small = pickSmall(fleet, opts.small);

  // Warm-up on the small set only, so the first memory reading is "100 active tenants".
  await runAutocannon({ url: server.base, connections: opts.connections, duration: 2, requests: [randomTenantRead(small)] });
  const runs: RunResult[] = [];
  const first = await measure(server, db, 'small', small, opts);
  runs.push(first);
  log(row(first));
  // Every tenant's first request, each tenant once: the cold registry (tenant, membership, pool
  // lookups all misses) and every home's first unit. Printed, not paired: the rounds below measure a
  // fleet whose tenants are all active, as a running service's are.
  const cold = await measure(server, db, 'fleet, each once (cold)', fleet, opts, { requests: [everyTenantOnce(fleet)], amount: fleet.length });
  runs.push(cold);
  log(row(cold));
  for (let r = 0; r < opts.rounds; r++) {
    for (const [name, set] of [['fleet', fleet], ['small', small]] as const) {
      const res = await measure(server, db, name, set, opts);
      runs.push(res);
      log(row(res));
    }
  }

  const head = '| run | tenants | req/s | p50 ms | p99 ms | errors | max conns | control reads / req | RSS MB | heap MB | /metrics |\n|---|---|---|---|---|---|---|---|---|---|---|';
  console.log(`\n${head}\n${runs.map(row).join('\n')}`);
  const smalls = runs.filter((r) => r.name === 'small').slice(1);
  const fleets = runs.filter((r) => r.name === 'fleet');
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const tput = avg(fleets.map((r) => r.result.requests.average)) / avg(smalls.map((r) => r.result.requests.average));
  const p99 = avg(fleets.map((r) => r.result.latency.p99)) / avg(smalls.map((r) => r.result.latency.p99));
  const growth = Math.max(...fleets.map((r) => r.rssMb)) - first.rssMb;
  const maxConns = Math.max(...runs.map((r) => r.maxConnections));
  const mark = (ok: boolean) => (ok ? '✓' : '✗');
  console.log(
    `\nfleet vs small (paired rounds after the first small run): throughput ${tput.toFixed(2)}× (target ≥ ${TARGET_THROUGHPUT} ${mark(tput >= TARGET_THROUGHPUT)}), ` +
      `p99 ${p99.toFixed(2)}× (target ≤ ${TARGET_P99} ${mark(p99 <= TARGET_P99)}), ` +
      `API memory growth ${growth.toFixed(0)} MB RSS (target ≤ ${TARGET_MEMORY_MB} ${mark(growth <= TARGET_MEMORY_MB)}), ` +
      `max connections ${maxConns} (server max_connections ${maxConnSetting}), /metrics ${runs.at(-1)!.metricsKb.toFixed(0)} KB`,
  );
  return 0;
});
