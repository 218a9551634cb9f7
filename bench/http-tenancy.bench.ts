/**
 * HTTP tenancy overhead bench: the same point read and list read, side by side, through
 *   - baseline: a bench-only route with an explicit `WHERE tenant_id = $1`, no tenancy layer
 *     (no guard, no CLS tenant, no transaction), owner DataSource on the pool's shared schema;
 *   - pool / bridge / silo: the real tenant routes, full stack (wire tenant, JWT, membership,
 *     pipelined tenant transaction, RLS).
 * The API runs in a forked child; autocannon drives it from this process. See bench/README.md.
 *
 *   npm run bench -- [--duration 2] [--connections 32] [--rounds 8] [--warmup 1] [--quick] [--breakdown]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isDeepStrictEqual } from 'node:util';
import type { Tier } from '#strata/control-plane';
import { runAutocannon, type AutocannonResult } from './autocannon';
import { BenchDatabase } from './bench-database';
import { CpuMeter, type CpuUsagePerRequest } from './cpu-meter';
import type { BenchServerReady } from './bench-server';

const TARGET_RATIO = 0.85;
const INVOICES_PER_TENANT = 500;
const LIST_LIMIT = 50;
/** A measured run during which other processes used more than this share of the cores is flagged. */
const NOISY_OTHER_PCT = 10;

// ---------------------------------------------------------------------------------------------
// options

interface BenchOptions {
  duration: number;
  connections: number;
  rounds: number;
  warmup: number;
  breakdown: boolean;
  quick: boolean;
  /** Targets to measure (default: all); without `baseline` the ratios are n/a. */
  only: string[] | null;
  /** Reads to measure (default: both). */
  reads: Read[];
  /** Directory for V8 CPU profiles of the API child, one per measured run. */
  cpuProf: string | null;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean', default: false },
      breakdown: { type: 'boolean', default: false },
      only: { type: 'string' },
      read: { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      'usage: npm run bench -- [--duration s] [--connections n] [--rounds n] [--warmup s] [--quick] [--breakdown]\n' +
        '  --quick      smoke run: 1 s warm-up, 3 s per scenario, 1 round (explicit flags still win)\n' +
        '  --breakdown  also measure "pool-noauth": the pool tenant transaction without the auth guard\n' +
        '  --only a,b   measure only these targets (baseline, pool, bridge, silo, pool-noauth; diagnostics)\n' +
        '  --read r     measure only this read: point or list (diagnostics)\n' +
        '  --cpu-prof d write a V8 CPU profile of the API process into directory d (diagnostics)',
    );
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const num = (name: string, raw: string | undefined, fallback: number, min: number, integer = true): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
  return {
    quick,
    breakdown: (values.breakdown ?? false) || /pool-noauth/.test(values.only ?? ''),
    only: values.only ? values.only.split(',').map((x) => x.trim()).filter(Boolean) : null,
    reads: values.read ? [parseRead(values.read)] : READS,
    cpuProf: values['cpu-prof'] ? resolve(values['cpu-prof']) : null,
    // Short runs, many rounds: a pair (B T B) then spans ~9 s instead of ~18 s, so less of the
    // box's drift lands between a tier run and its baselines, and the median has 8 ratios, not 3.
    // Same machine, same commit: 5 × 5 s gave per-round point-read ratios of 0.69–1.03, 8 × 2 s 0.84–1.02.
    duration: num('duration', values.duration, quick ? 3 : 2, 1),
    connections: num('connections', values.connections, 32, 1),
    rounds: num('rounds', values.rounds, quick ? 1 : 8, 1),
    warmup: num('warmup', values.warmup, 1, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// the API child process

interface BenchServer {
  child: ChildProcess;
  base: string;
  ready: BenchServerReady;
  stop(): Promise<void>;
  /** Starts / stops a V8 CPU profile in the API process; stop writes it to `file`. */
  profile(action: 'start' | 'stop', file?: string): Promise<void>;
}

async function startServer(db: BenchDatabase, breakdown: boolean): Promise<BenchServer> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: process.env.NODE_ENV ?? 'production',
    DATABASE_URL: db.ownerUrl,
    DB_APP_USER: db.appRole,
    AUTH_JWT_SECRET: `bench-${db.runId}-${'x'.repeat(40)}`,
    STRATA_BENCH_BREAKDOWN: breakdown ? '1' : '0',
  };
  // The app's defaults are what we measure (DATA_POOL_MAX = 10 in particular).
  delete env.DATA_POOL_MAX;
  delete env.DB_APP_PASSWORD;
  delete env.AUTH_JWKS_URL;
  delete env.AUTH_JWT_ISSUER;
  delete env.BASE_DOMAIN;
  delete env.PORT;

  const child = fork(join(__dirname, 'bench-server.js'), [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<BenchServerReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bench server did not report ready within 60 s')), 60_000);
    child.once('message', (msg: BenchServerReady) => {
      clearTimeout(timer);
      if (msg?.type === 'ready') resolve(msg);
      else reject(new Error(`unexpected message from bench server: ${JSON.stringify(msg)}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`bench server exited before it was ready (code ${code}, signal ${signal})`));
    });
  });

  let stopping: Promise<void> | undefined;
  return {
    profile(action, file) {
      return new Promise<void>((resolve) => {
        const onMessage = (msg: { type?: string; action?: string }) => {
          if (msg?.type === 'cpu-profile' && msg.action === action) {
            child.off('message', onMessage);
            resolve();
          }
        };
        child.on('message', onMessage);
        child.send({ type: 'cpu-profile', action, file });
      });
    },
    child,
    ready,
    base: `http://127.0.0.1:${ready.port}`,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        if (child.connected) child.send({ type: 'shutdown' });
        else child.kill('SIGTERM');
      });
      return stopping;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// talking to the API

interface CallOptions {
  token?: string;
  tenant?: string;
  headers?: Record<string, string>;
  body?: unknown;
  expect?: number;
}

async function call<T = any>(base: string, method: string, path: string, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.tenant) headers['x-tenant'] = opts.tenant;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  const expect = opts.expect ?? (method === 'POST' ? 201 : 200);
  if (res.status !== expect) {
    throw new Error(`${method} ${path} answered ${res.status} (expected ${expect}): ${text.slice(0, 500)}`);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

interface BenchTenant {
  tier: Tier;
  id: string;
  slug: string;
  token: string;
  projectId: string;
}

async function onboard(base: string, adminToken: string, db: BenchDatabase, tier: Tier): Promise<BenchTenant> {
  const slug = db.slug(`bench-${tier}`);
  const created = await call<{ id: string; status: string }>(base, 'POST', '/admin/tenants', {
    token: adminToken,
    body: { slug, name: `bench ${tier}`, tier },
  });
  const email = `owner@${slug}.bench.test`;
  const password = 'bench-password-123';
  await call(base, 'POST', `/admin/tenants/${created.id}/users`, {
    token: adminToken,
    body: { email, password, role: 'owner' },
  });
  const login = await call<{ access_token: string }>(base, 'POST', '/auth/login', {
    tenant: slug,
    body: { email, password },
    expect: 200,
  });
  const token = login.access_token;
  const project = await call<{ id: string }>(base, 'POST', '/projects', {
    token,
    tenant: slug,
    body: { name: `Bench project (${tier})`, description: 'the project every point read fetches' },
  });
  await inParallel(INVOICES_PER_TENANT, 16, (i) =>
    call(base, 'POST', '/invoices', {
      token,
      tenant: slug,
      body: { number: `INV-${String(i + 1).padStart(5, '0')}`, amount: 1000 + ((i * 7919) % 100_000), currency: 'EUR' },
    }),
  );
  return { tier, id: created.id, slug, token, projectId: project.id };
}

async function inParallel(count: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// scenarios

type Read = 'point' | 'list';
const READS: Read[] = ['point', 'list'];
function parseRead(raw: string): Read {
  if (raw !== 'point' && raw !== 'list') throw new Error(`--read must be point or list, got ${JSON.stringify(raw)}`);
  return raw;
}

const READ_LABEL: Record<Read, string> = {
  point: 'GET /projects/:id',
  list: `GET /invoices?limit=${LIST_LIMIT}`,
};

interface Scenario {
  read: Read;
  target: string;
  path: string;
  headers: Record<string, string>;
}

function scenariosFor(tenants: BenchTenant[], breakdown: boolean): Scenario[] {
  const pool = tenants.find((t) => t.tier === 'pool')!;
  const out: Scenario[] = [];
  for (const read of READS) {
    const tail = read === 'point' ? (t: BenchTenant) => `projects/${t.projectId}` : () => `invoices?limit=${LIST_LIMIT}`;
    // The baseline reads the pool tenant's rows, named by id on the wire, with no tenancy layer.
    out.push({ read, target: 'baseline', path: `/bench/baseline/${tail(pool)}`, headers: { 'x-bench-tenant-id': pool.id } });
    if (breakdown) {
      out.push({ read, target: 'pool-noauth', path: `/bench/tenant-tx/${tail(pool)}`, headers: { 'x-bench-tenant-id': pool.id } });
    }
    for (const t of tenants) {
      out.push({ read, target: t.tier, path: `/${tail(t)}`, headers: { authorization: `Bearer ${t.token}`, 'x-tenant': t.slug } });
    }
  }
  return out;
}

/** One request per scenario before measuring: 200, the expected shape, and baseline ≡ pool. */
async function preflight(base: string, scenarios: Scenario[]): Promise<void> {
  const bodies = new Map<string, unknown>();
  for (const s of scenarios) {
    const body = await call(base, 'GET', s.path, { headers: s.headers });
    const items = listItems(body);
    if (s.read === 'list' && items?.length !== LIST_LIMIT) {
      throw new Error(`${s.target} ${READ_LABEL[s.read]} returned ${items?.length ?? 'no'} items, expected ${LIST_LIMIT}`);
    }
    if (s.read === 'point' && !(body && typeof body === 'object' && 'id' in body)) {
      throw new Error(`${s.target} ${READ_LABEL[s.read]} returned no project: ${JSON.stringify(body).slice(0, 200)}`);
    }
    bodies.set(`${s.read}:${s.target}`, body);
  }
  for (const read of READS) {
    const baseline = bodies.get(`${read}:baseline`);
    const pool = bodies.get(`${read}:pool`);
    if (!isDeepStrictEqual(baseline, pool)) {
      throw new Error(
        `baseline and pool ${READ_LABEL[read]} answer differently, so they do not do the same work:\n` +
          `  baseline: ${JSON.stringify(baseline).slice(0, 400)}\n  pool:     ${JSON.stringify(pool).slice(0, 400)}`,
      );
    }
  }
}

function listItems(body: unknown): unknown[] | undefined {
  if (Array.isArray(body)) return body;
  const items = (body as { items?: unknown } | null)?.items;
  return Array.isArray(items) ? items : undefined;
}

// ---------------------------------------------------------------------------------------------
// measuring

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  cpu: CpuUsagePerRequest;
}

/** One tier run against the mean of the baseline runs just before and just after it. */
interface Pair {
  rpsRatio: number;
  /** Baseline API CPU per request ÷ this tier's (> 1 would mean cheaper than the baseline). */
  apiCpuRatio: number | null;
}

interface Tally {
  scenario: Scenario;
  samples: Sample[];
  /** Tiers only: one per round. */
  pairs: Pair[];
  non2xx: number;
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
}

function count(tally: Tally, r: AutocannonResult): void {
  tally.non2xx += r.non2xx;
  tally.errors += r.errors;
  tally.timeouts += r.timeouts;
  for (const [code, { count: n }] of Object.entries(r.statusCodeStats ?? {})) tally.statuses[code] = (tally.statuses[code] ?? 0) + n;
}

async function measure(server: BenchServer, meter: CpuMeter, scenarios: Scenario[], opts: BenchOptions): Promise<Tally[]> {
  const { base } = server;
  const tallies = scenarios.map(
    (scenario): Tally => ({ scenario, samples: [], pairs: [], non2xx: 0, errors: 0, timeouts: 0, statuses: {} }),
  );
  const perRun = opts.warmup + opts.duration;
  const runsPerRound = READS.reduce((n, read) => {
    const rows = tallies.filter((t) => t.scenario.read === read);
    const tiers = rows.filter((t) => t.scenario.target !== 'baseline').length;
    return n + (rows.length > tiers ? 2 * tiers + 1 : tiers);
  }, 0);
  const total = perRun * runsPerRound * opts.rounds + opts.warmup * scenarios.length;
  console.error(
    `measuring ${scenarios.length} scenarios × ${opts.rounds} round(s) (${runsPerRound} runs a round: baseline between every tier), ` +
      `${opts.warmup} s warm-up + ${opts.duration} s each ≈ ${Math.ceil(total / 60)} min`,
  );
  // One pass over every scenario before round 1: the API process has just served 1,500 inserts,
  // and without this the first scenarios measured run on colder JIT code and a messier heap than
  // later ones (seen as 30–50 % lower req/s in round 1 than round 2 for the same scenario).
  if (opts.warmup > 0) {
    for (const tally of tallies) {
      const { scenario } = tally;
      const run = { url: `${base}${scenario.path}`, connections: opts.connections, headers: scenario.headers, timeout: 10 };
      count(tally, await runAutocannon({ ...run, duration: opts.warmup }));
    }
  }

  const runOnce = async (tally: Tally, round: number, seq: number): Promise<Sample> => {
    const { scenario } = tally;
    const common = { url: `${base}${scenario.path}`, connections: opts.connections, headers: scenario.headers, timeout: 10 };
    if (opts.warmup > 0) count(tally, await runAutocannon({ ...common, duration: opts.warmup }));
    if (opts.cpuProf) await server.profile('start');
    await meter.start();
    const r = await runAutocannon({ ...common, duration: opts.duration });
    const cpu = await meter.stop(r.requests.total);
    if (opts.cpuProf) {
      const file = join(opts.cpuProf, `r${round + 1}-${seq}-${scenario.read}-${scenario.target}.cpuprofile`);
      await server.profile('stop', file);
      console.error(`    profile: ${file}`);
    }
    count(tally, r);
    const sample: Sample = { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, cpu };
    tally.samples.push(sample);
    console.error(
      `  round ${round + 1}/${opts.rounds}  ${READ_LABEL[scenario.read].padEnd(24)} ${scenario.target.padEnd(12)} ` +
        `${sample.rps.toFixed(0).padStart(6)} req/s  p50 ${sample.p50} ms  p99 ${sample.p99} ms  ` +
        `CPU/req: api ${fmtUs(cpu.serverUs)} pg ${fmtUs(cpu.postgresUs)} µs, machine ${fmtPct(cpu.machineBusyPct)} (other ${fmtPct(cpu.otherBusyPct)})` +
        (r.non2xx || r.errors || r.timeouts ? `  !! non-2xx ${r.non2xx} errors ${r.errors} timeouts ${r.timeouts}` : ''),
    );
    return sample;
  };

  for (let round = 0; round < opts.rounds; round++) {
    // Paired: on a shared machine the speed of the box drifts by tens of percent within a minute
    // (neighbours, steal), far more than the effect measured. So every tier run sits between two
    // baseline runs of the same read (B T1 B T2 B T3 B) and is compared with their mean; the tier
    // order rotates between rounds and the read order alternates, so no tier always goes first.
    const reads = round % 2 ? [...READS].reverse() : READS;
    let seq = 0;
    for (const read of reads) {
      const rows = tallies.filter((t) => t.scenario.read === read);
      const baseline = rows.find((t) => t.scenario.target === 'baseline');
      const tiers = rows.filter((t) => t !== baseline);
      const order = tiers.length ? rotate(tiers, round % tiers.length) : [];
      if (!baseline) {
        for (const t of order) await runOnce(t, round, ++seq);
        continue;
      }
      let before = await runOnce(baseline, round, ++seq);
      for (const t of order) {
        const sample = await runOnce(t, round, ++seq);
        const after = await runOnce(baseline, round, ++seq);
        const baseRps = (before.rps + after.rps) / 2;
        const baseApi = before.cpu.serverUs !== null && after.cpu.serverUs !== null ? (before.cpu.serverUs + after.cpu.serverUs) / 2 : null;
        t.pairs.push({
          rpsRatio: sample.rps / baseRps,
          apiCpuRatio: baseApi !== null && sample.cpu.serverUs ? baseApi / sample.cpu.serverUs : null,
        });
        before = after;
      }
    }
  }
  return tallies;
}

function rotate<T>(xs: T[], by: number): T[] {
  return [...xs.slice(by), ...xs.slice(0, by)];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---------------------------------------------------------------------------------------------
// report

function report(tallies: Tally[], opts: BenchOptions, meta: Record<string, string>): { failed: Tally[]; misses: string[] } {
  const lines: string[] = [];
  lines.push('## Strata HTTP tenancy bench', '');
  for (const [k, v] of Object.entries(meta)) lines.push(`- ${k}: ${v}`);
  lines.push('');
  lines.push(
    `| read | scenario | req/s (median) | req/s per run | p50 ms | p99 ms | non-2xx / errors | × baseline per round | × baseline (median) | ≥ ${TARGET_RATIO}× |`,
  );
  lines.push('|---|---|--:|---|--:|--:|--:|---|--:|:-:|');
  const failed: Tally[] = [];
  const misses: string[] = [];
  for (const read of READS) {
    const rows = tallies.filter((t) => t.scenario.read === read);
    for (const t of rows) {
      const rps = median(t.samples.map((s) => s.rps));
      const ratio = t.pairs.length ? median(t.pairs.map((p) => p.rpsRatio)) : NaN;
      const bad = t.non2xx + t.errors + t.timeouts;
      if (bad) failed.push(t);
      const isBaseline = t.scenario.target === 'baseline';
      const known = Number.isFinite(ratio);
      const meets = isBaseline ? '—' : !known ? 'n/a' : ratio >= TARGET_RATIO ? 'yes' : '**no**';
      if (!isBaseline && known && ratio < TARGET_RATIO) misses.push(`${READ_LABEL[read]} ${t.scenario.target} ${ratio.toFixed(2)}×`);
      lines.push(
        `| ${READ_LABEL[read]} | ${t.scenario.target} | ${rps.toFixed(0)} | ${t.samples.map((s) => s.rps.toFixed(0)).join(', ')} | ` +
          `${fmtMs(median(t.samples.map((s) => s.p50)))} | ${fmtMs(median(t.samples.map((s) => s.p99)))} | ` +
          `${t.non2xx} / ${t.errors + t.timeouts} | ${isBaseline ? '—' : t.pairs.map((p) => p.rpsRatio.toFixed(2)).join(', ') || 'n/a'} | ` +
          `${isBaseline ? '1.00' : known ? ratio.toFixed(2) : 'n/a'} | ${meets} |`,
      );
    }
  }
  lines.push('');
  lines.push(
    'Where the CPU goes (µs of CPU per completed request, medians over rounds; PostgreSQL = the backends of the bench databases; ' +
      '"other processes" = busy cores not explained by the API, those backends and the load generator):',
    '',
  );
  lines.push('| read | scenario | API process | PostgreSQL | load generator | API CPU: baseline ÷ this | machine busy | of it other processes |');
  lines.push('|---|---|--:|--:|--:|--:|--:|--:|');
  for (const t of tallies) {
    const m = (f: (c: CpuUsagePerRequest) => number | null) => {
      const xs = t.samples.map((s) => f(s.cpu)).filter((x): x is number => x !== null);
      return xs.length ? median(xs) : null;
    };
    const api = m((c) => c.serverUs);
    const cpuRatios = t.pairs.map((p) => p.apiCpuRatio).filter((x): x is number => x !== null);
    const cpuRatio = t.scenario.target === 'baseline' ? '1.00' : cpuRatios.length ? median(cpuRatios).toFixed(2) : 'n/a';
    lines.push(
      `| ${READ_LABEL[t.scenario.read]} | ${t.scenario.target} | ${fmtUs(api)} | ${fmtUs(m((c) => c.postgresUs))} | ` +
        `${fmtUs(m((c) => c.benchUs))} | ${cpuRatio} | ${fmtPct(m((c) => c.machineBusyPct))} | ${fmtPct(m((c) => c.otherBusyPct))} |`,
    );
  }
  lines.push('');
  lines.push(
    `req/s and latencies are medians over runs; × baseline compares each tier run with the mean of the baseline runs just ` +
      `before and after it (same read), one ratio per round, and takes their median; the CPU ratio is paired the same way. ` +
      `non-2xx / errors count warm-ups too. ` +
      `Target (issue): every tier ≥ ${TARGET_RATIO}× the baseline of the same read.`,
  );
  lines.push(misses.length ? `Below target: ${misses.join('; ')}.` : 'Every tier meets the target.');
  const samples = tallies.flatMap((t) => t.samples);
  const noisy = samples.filter((x) => (x.cpu.otherBusyPct ?? 0) > NOISY_OTHER_PCT).length;
  if (noisy) {
    lines.push(
      `Warning: in ${noisy} of ${samples.length} measured runs other processes kept more than ${NOISY_OTHER_PCT} % of the cores busy; ` +
        'those req/s are depressed unevenly. Rerun on a quiet machine, or with more --rounds, before drawing conclusions.',
    );
  }
  console.log(lines.join('\n'));
  return { failed, misses };
}

function fmtUs(us: number | null): string {
  return us === null ? 'n/a' : us.toFixed(0);
}

function fmtPct(pct: number | null): string {
  return pct === null ? 'n/a' : `${pct.toFixed(0)} %`;
}

function fmtMs(ms: number): string {
  return Number.isInteger(ms) ? String(ms) : ms.toFixed(2);
}

function describeEnvironment(opts: BenchOptions, ready: BenchServerReady, pgVersion: string): Record<string, string> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not a git checkout
  }
  const cpu = cpus();
  return {
    command: `node dist/bench/http-tenancy.bench.js ${process.argv.slice(2).join(' ')}`.trim(),
    load: `autocannon, ${opts.connections} connections, ${opts.warmup} s warm-up + ${opts.duration} s per run, ${opts.rounds} round(s), baseline run between every tier run`,
    machine: `${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, Node ${process.version}, PostgreSQL ${pgVersion}, commit ${commit}`,
    pools: `DATA_POOL_MAX ${ready.pools.dataPoolMax} (baseline DataSource: same), SILO_POOL_MAX ${ready.pools.siloPoolMax}, registry cache TTL ${ready.pools.registryCacheTtlMs} ms`,
    data: `3 tenants (pool, bridge, silo), 1 project + ${INVOICES_PER_TENANT} invoices each, created through the API`,
  };
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true });
  const db = new BenchDatabase();
  let server: BenchServer | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await server?.stop().catch((err) => console.error('stopping the bench server failed:', err));
      await db.drop().then(
        () => console.error(`dropped ${db.name}, its silo databases and role ${db.appRole}`),
        (err) => console.error(`!! could not drop ${db.name} / ${db.appRole}; drop them by hand:`, err),
      );
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    console.error(`creating ${db.name} (role ${db.appRole}) on ${redact(db.adminUrl)}`);
    await db.create();
    const pgVersion = await db.serverVersion();
    server = await startServer(db, opts.breakdown);
    console.error(`API child pid ${server.child.pid} on ${server.base}; onboarding pool, bridge and silo tenants`);
    const tenants: BenchTenant[] = [];
    for (const tier of ['pool', 'bridge', 'silo'] as const) tenants.push(await onboard(server.base, server.ready.adminToken, db, tier));
    const all = scenariosFor(tenants, opts.breakdown);
    await preflight(server.base, all);
    const only = opts.only;
    const scenarios = all.filter((s) => (!only || only.includes(s.target)) && opts.reads.includes(s.read));
    if (!scenarios.length) throw new Error(`--only ${only?.join(',')} --read ${opts.reads.join(',')} selects no scenario`);

    const meter = await CpuMeter.open(db.adminUrl, server.child.pid, [db.name, ...(await db.siloDatabases())]);
    const tallies = await measure(server, meter, scenarios, opts).finally(() => meter.close());
    const { failed } = report(tallies, opts, describeEnvironment(opts, server.ready, pgVersion));
    if (failed.length) {
      console.error('\n!! BENCH FAILED: requests did not all succeed, so the numbers above are not valid:');
      for (const t of failed) {
        console.error(
          `!!   ${READ_LABEL[t.scenario.read]} ${t.scenario.target}: non-2xx ${t.non2xx}, errors ${t.errors}, timeouts ${t.timeouts}, ` +
            `status codes ${JSON.stringify(t.statuses)}`,
        );
      }
      return 1;
    }
    return 0;
  } finally {
    await cleanup();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('\n!! BENCH FAILED:', err);
    process.exit(1);
  },
);
