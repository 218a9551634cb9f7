/**
 * HTTP tenancy overhead bench: the same point read, list read and write (POST /invoices), side by
 * side, through
 *   - baseline: bench-only routes with an explicit tenant_id, no tenancy layer (no guard, no CLS
 *     tenant; reads without a transaction, the write in one plain transaction), owner DataSource on
 *     the pool's shared schema;
 *   - pool / bridge / silo: the real tenant routes, full stack (wire tenant, JWT, membership,
 *     tenant unit of work, RLS), each measured with the placement fence on (the app's default) and
 *     off (a second API child started with PLACEMENT_FENCE=false), and with the rate limits on (the
 *     default) and off (a third child, RATE_LIMITS_ENABLED=false), one child under load at a time.
 * The API runs in forked children; autocannon drives them from this process. See bench/README.md.
 *
 *   npm run bench -- [--duration 2] [--connections 32] [--rounds 6] [--warmup 1] [--fence both] [--limits both] [--quick] [--breakdown]
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isDeepStrictEqual } from 'node:util';
import type { Tier } from '#strata/control-plane';
import { runAutocannon, type AutocannonResult } from './autocannon';
import { call, forkApiChild } from './api-child';
import { BenchDatabase } from './bench-database';
import { CpuMeter, type CpuUsagePerRequest } from './cpu-meter';
import type { BenchServerReady } from './bench-server';

/** The issue's target for reads: every tier ≥ this × the baseline of the same read. */
const TARGET_RATIO = 0.85;
/** The fence's budget: every ratio with the fence at most this much below the same run without it. */
const FENCE_BUDGET = 0.02;
/** The rate limits' budget (issue 15): every ratio with limits on at most this much below the same run with them off. */
const LIMITS_BUDGET = 0.02;
/**
 * The bench tenants' plan: enterprise's quotas (none) with a rate no run reaches, so the limits are
 * paid on every request and refuse none (a 429 would fail the bench as any non-2xx does).
 */
const BENCH_PLAN = 'bench-unmetered';
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
  /** Which API children to run the tenant scenarios on: fence on, off, or both side by side. */
  fence: FenceMode;
  /** The same for the rate limits (RATE_LIMITS_ENABLED). */
  limits: FenceMode;
  /** Targets to measure (default: all); without `baseline` the ratios are n/a. */
  only: string[] | null;
  /** Operations to measure (default: all three). */
  ops: Op[];
  /** Directory for V8 CPU profiles of the API child, one per measured run. */
  cpuProf: string | null;
}

type FenceMode = 'on' | 'off' | 'both';
/**
 * An API child: `on` the app's defaults (fence and limits on), `off` with PLACEMENT_FENCE=false,
 * `limits-off` with RATE_LIMITS_ENABLED=false and TENANT_MAX_CONCURRENT_REQUESTS=0 (no per-request
 * admission at all). Each differs from `on` in that one respect only.
 */
type Variant = 'on' | 'off' | 'limits-off';
const VARIANTS: Variant[] = ['on', 'off', 'limits-off'];
const VARIANT_LABEL: Record<Variant, string> = { on: 'defaults', off: 'fence off', 'limits-off': 'limits off' };

/** The children a run needs: `--fence off` or `--limits off` alone, else the defaults plus each `both`'s other child. */
function variantsOf(opts: Pick<BenchOptions, 'fence' | 'limits'>): Variant[] {
  if (opts.fence === 'off' && opts.limits === 'off') throw new Error('--fence off and --limits off: choose one (each child differs from the defaults in one setting)');
  if (opts.fence === 'off') return ['off'];
  if (opts.limits === 'off') return ['limits-off'];
  return ['on', ...(opts.fence === 'both' ? (['off'] as const) : []), ...(opts.limits === 'both' ? (['limits-off'] as const) : [])];
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      fence: { type: 'string' },
      limits: { type: 'string' },
      quick: { type: 'boolean', default: false },
      breakdown: { type: 'boolean', default: false },
      only: { type: 'string' },
      op: { type: 'string' },
      read: { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      'usage: npm run bench -- [--duration s] [--connections n] [--rounds n] [--warmup s] [--fence on|off|both] [--limits on|off|both] [--quick] [--breakdown]\n' +
        '  --fence f    both (default): every tier scenario with the placement fence on and off, side by side;\n' +
        '               on / off: only that API child (the pre-fence layout B T1 B T2 B T3 B)\n' +
        '  --limits l   both (default): every tier scenario with the rate limits on and off, side by side (a third\n' +
        '               child); on / off: only that setting\n' +
        '  --quick      smoke run: 1 s warm-up, 2 s per run, 1 round (explicit flags still win)\n' +
        '  --breakdown  also measure "pool-noauth": the pool tenant unit of work without the auth guard (reads only)\n' +
        '  --only a,b   measure only these targets (baseline, pool, bridge, silo, pool-noauth; diagnostics)\n' +
        '  --op o,p     measure only these operations: point, list, write (diagnostics; --read is an alias)\n' +
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
  const fence = values.fence ?? 'both';
  if (fence !== 'on' && fence !== 'off' && fence !== 'both') throw new Error(`--fence must be on, off or both, got ${JSON.stringify(fence)}`);
  const limits = values.limits ?? 'both';
  if (limits !== 'on' && limits !== 'off' && limits !== 'both') throw new Error(`--limits must be on, off or both, got ${JSON.stringify(limits)}`);
  const compared = variantsOf({ fence, limits }).length > 1;
  const opsRaw = values.op ?? values.read;
  return {
    quick,
    fence,
    limits,
    breakdown: (values.breakdown ?? false) || /pool-noauth/.test(values.only ?? ''),
    only: values.only ? values.only.split(',').map((x) => x.trim()).filter(Boolean) : null,
    ops: opsRaw ? opsRaw.split(',').map((x) => parseOp(x.trim())) : OPS,
    cpuProf: values['cpu-prof'] ? resolve(values['cpu-prof']) : null,
    // Short runs, many rounds: a pair (B T B) then spans ~9 s instead of ~18 s, so less of the
    // box's drift lands between a tier run and its baselines. Same machine, same commit: 5 × 5 s
    // gave per-round point-read ratios of 0.69–1.03, 8 × 2 s 0.84–1.02. With the fence compared
    // (both), a round has 30 runs instead of 21, so 6 rounds (even: each tier runs fence-on first
    // in half of them) keep the default run near 11 minutes; see bench/README.md.
    duration: num('duration', values.duration, 2, 1),
    connections: num('connections', values.connections, 32, 1),
    rounds: num('rounds', values.rounds, quick ? 1 : compared ? 6 : 8, 1),
    warmup: num('warmup', values.warmup, 1, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// the API child process

interface BenchServer {
  variant: Variant;
  child: ChildProcess;
  base: string;
  ready: BenchServerReady;
  stop(): Promise<void>;
  /** Starts / stops a V8 CPU profile in the API process; stop writes it to `file`. */
  profile(action: 'start' | 'stop', file?: string): Promise<void>;
}

async function startServer(db: BenchDatabase, breakdown: boolean, variant: Variant): Promise<BenchServer> {
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
  // Fence on = the app's default (an inherited PLACEMENT_FENCE is removed); off = the one setting
  // that differs between the two children. Same database, same tenants, same JWT secret.
  delete env.PLACEMENT_FENCE;
  if (variant === 'off') env.PLACEMENT_FENCE = 'false';
  // Limits on = the app's defaults, with a user rate no run reaches (the tenants' plan is BENCH_PLAN,
  // whose rate and concurrency budget no run reaches either): every request pays for both buckets and
  // for a slot of the tenant's concurrency budget, and none is refused or queued. Off = no rate limits
  // and no concurrency budget, the two per-request admissions of issue 15.
  delete env.RATE_LIMITS_ENABLED;
  delete env.TENANT_MAX_CONCURRENT_REQUESTS;
  env.RATE_LIMIT_USER_PER_SECOND = '1000000';
  if (variant === 'limits-off') {
    env.RATE_LIMITS_ENABLED = 'false';
    env.TENANT_MAX_CONCURRENT_REQUESTS = '0';
  }

  const api = await forkApiChild<BenchServerReady>(join(__dirname, 'bench-server.js'), env, ['ignore', 'inherit', 'inherit', 'ipc'], 'bench server');
  const { child, ready } = api;

  if (ready.placementFence !== (variant !== 'off') || ready.rateLimitsEnabled !== (variant !== 'limits-off')) {
    child.kill('SIGKILL');
    throw new Error(`the ${VARIANT_LABEL[variant]} API child loaded placementFence = ${ready.placementFence}, rateLimitsEnabled = ${ready.rateLimitsEnabled}`);
  }

  return {
    ...api,
    variant,
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
  };
}

// ---------------------------------------------------------------------------------------------
// talking to the API

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
    // Unlimited: a run creates hundreds of thousands of invoices, past any other plan's monthly quota,
    // at a rate no run reaches.
    body: { slug, name: `bench ${tier}`, tier, plan: BENCH_PLAN },
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

type Op = 'point' | 'list' | 'write';
const OPS: Op[] = ['point', 'list', 'write'];
function parseOp(raw: string): Op {
  if (raw !== 'point' && raw !== 'list' && raw !== 'write') throw new Error(`--op must be point, list or write, got ${JSON.stringify(raw)}`);
  return raw;
}

const OP_LABEL: Record<Op, string> = {
  point: 'GET /projects/:id',
  list: `GET /invoices?limit=${LIST_LIMIT}`,
  write: 'POST /invoices',
};

/** Tier targets in a fixed order (rounds rotate it); pool-noauth only with --breakdown. */
const TIER_TARGETS = ['pool-noauth', 'pool', 'bridge', 'silo'];

interface Scenario {
  op: Op;
  target: string;
  /**
   * The API child that serves it. The baseline runs on one child only (the first of the run's
   * variants) and is shared by both: it has no tenancy layer, so the fence setting cannot touch it.
   */
  variant: Variant;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  /** Writes: a JSON body whose `[<id>]` autocannon replaces with a unique id on every request. */
  body?: string;
}

const ID_PLACEHOLDER = '[<id>]';

/** A create body; `tag` names the scenario in the invoice number (≤ 64 chars with autocannon's 33-char id). */
function writeBody(tag: string): string {
  return JSON.stringify({ number: `${tag}-${ID_PLACEHOLDER}`, amount: 4242, currency: 'EUR' });
}

function scenariosFor(tenants: BenchTenant[], variants: Variant[], breakdown: boolean): Scenario[] {
  const pool = tenants.find((t) => t.tier === 'pool')!;
  const out: Scenario[] = [];
  const json = { 'content-type': 'application/json' };
  for (const op of OPS) {
    const method = op === 'write' ? 'POST' : 'GET';
    const tail =
      op === 'point' ? (t: BenchTenant) => `projects/${t.projectId}` : op === 'list' ? () => `invoices?limit=${LIST_LIMIT}` : () => 'invoices';
    // The baseline reads and writes the pool tenant's rows, named by id on the wire, with no tenancy layer.
    out.push({
      op,
      target: 'baseline',
      variant: variants[0],
      method,
      path: `/bench/baseline/${tail(pool)}`,
      headers: { 'x-bench-tenant-id': pool.id, ...(op === 'write' ? json : {}) },
      body: op === 'write' ? writeBody('b') : undefined,
    });
    for (const variant of variants) {
      // pool-noauth (--breakdown) has reads only: bench/tenant-tx.controller.ts serves no write.
      if (breakdown && op !== 'write') {
        out.push({
          op,
          target: 'pool-noauth',
          variant,
          method,
          path: `/bench/tenant-tx/${tail(pool)}`,
          headers: { 'x-bench-tenant-id': pool.id },
        });
      }
      for (const t of tenants) {
        out.push({
          op,
          target: t.tier,
          variant,
          method,
          path: `/${tail(t)}`,
          headers: { authorization: `Bearer ${t.token}`, 'x-tenant': t.slug, ...(op === 'write' ? json : {}) },
          body: op === 'write' ? writeBody(`${t.tier}-${variant}`) : undefined,
        });
      }
    }
  }
  return out;
}

function scenarioName(s: Scenario): string {
  return s.target === 'baseline' ? 'baseline' : `${s.target} (${VARIANT_LABEL[s.variant]})`;
}

/**
 * One request per scenario before measuring, on the child that will serve it. Reads: 200, the
 * expected shape, and baseline ≡ pool on every child. Writes: 201 with the same fields for
 * baseline and tiers, and the baseline's invoice is the pool tenant's (its real route reads it
 * back identically), so both write the same table. Reads go first: the writes change the list.
 */
async function preflight(servers: Map<Variant, BenchServer>, scenarios: Scenario[], pool: BenchTenant): Promise<void> {
  const bodies = new Map<string, unknown>();
  const key = (s: Pick<Scenario, 'op' | 'target' | 'variant'>) => `${s.op}:${s.target}:${s.target === 'baseline' ? '' : s.variant}`;
  const reads = scenarios.filter((s) => s.op !== 'write');
  const writes = scenarios.filter((s) => s.op === 'write');
  for (const s of reads) {
    const body = await call(servers.get(s.variant)!.base, s.method, s.path, { headers: s.headers, expect: 200 });
    const items = listItems(body);
    if (s.op === 'list' && items?.length !== LIST_LIMIT) {
      throw new Error(`${scenarioName(s)} ${OP_LABEL[s.op]} returned ${items?.length ?? 'no'} items, expected ${LIST_LIMIT}`);
    }
    if (s.op === 'point' && !(body && typeof body === 'object' && 'id' in body)) {
      throw new Error(`${scenarioName(s)} ${OP_LABEL[s.op]} returned no project: ${JSON.stringify(body).slice(0, 200)}`);
    }
    bodies.set(key(s), body);
  }
  const tag = randomBytes(4).toString('hex');
  for (const [i, s] of writes.entries()) {
    const sent = JSON.parse(s.body!.replace(ID_PLACEHOLDER, `preflight-${tag}-${i}`)) as Record<string, unknown>;
    const body = await call<Record<string, unknown>>(servers.get(s.variant)!.base, s.method, s.path, {
      headers: s.headers,
      body: sent,
      expect: 201,
    });
    const fields = Object.keys(body ?? {}).sort().join(',');
    if (fields !== 'amount,createdAt,currency,dueAt,id,number,status' || (['number', 'amount', 'currency'] as const).some((f) => body[f] !== sent[f])) {
      throw new Error(`${scenarioName(s)} ${OP_LABEL[s.op]} answered ${JSON.stringify(body).slice(0, 300)} to ${JSON.stringify(sent)}`);
    }
    bodies.set(key(s), body);
  }
  for (const variant of servers.keys()) {
    for (const op of OPS.filter((o) => o !== 'write')) {
      const baseline = bodies.get(key({ op, target: 'baseline', variant }));
      const tier = bodies.get(key({ op, target: 'pool', variant }));
      if (!isDeepStrictEqual(baseline, tier)) {
        throw new Error(
          `baseline and pool (${VARIANT_LABEL[variant]}) ${OP_LABEL[op]} answer differently, so they do not do the same work:\n` +
            `  baseline: ${JSON.stringify(baseline).slice(0, 400)}\n  pool:     ${JSON.stringify(tier).slice(0, 400)}`,
        );
      }
    }
  }
  const created = bodies.get(key({ op: 'write', target: 'baseline', variant: 'on' })) as { id: string } | undefined;
  if (created) {
    const server = servers.get(writes.find((s) => s.target === 'baseline')!.variant)!;
    const readBack = await call(server.base, 'GET', `/invoices/${created.id}`, { token: pool.token, tenant: pool.slug, expect: 200 });
    if (!isDeepStrictEqual(readBack, created)) {
      throw new Error(`the baseline's invoice reads back differently through GET /invoices/:id as the pool tenant: ${JSON.stringify(readBack)}`);
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

/** One tier run against the mean of the baseline runs just before and just after it (one per round). */
interface Pair {
  rpsRatio: number;
  /** Baseline API CPU per request ÷ this tier's (> 1 would mean cheaper than the baseline). */
  apiCpuRatio: number | null;
}

interface Tally {
  scenario: Scenario;
  samples: Sample[];
  /** Tiers only: one per round, in round order (so fence-on and fence-off pairs line up). */
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

/**
 * The order of the fence variants of one tier in one round. Alternates between rounds for every
 * (operation, tier), and between neighbouring tiers within a round, so neither variant is always
 * the run right after a baseline (on a drifting box, position alone moves a ratio by a few %).
 */
function variantOrder(variants: Variant[], round: number, op: Op, target: string): Variant[] {
  if (variants.length < 2) return variants;
  const turn = round + OPS.indexOf(op) + TIER_TARGETS.indexOf(target);
  if (variants.length === 2) return turn % 2 === 0 ? variants : [...variants].reverse();
  // Three children: every one takes every position (first, middle, last) as often as the others.
  const rotated = rotate(variants, turn % variants.length);
  return Math.floor(turn / variants.length) % 2 === 0 ? rotated : [...rotated].reverse();
}

async function measure(
  servers: Map<Variant, BenchServer>,
  meters: Map<Variant, CpuMeter>,
  scenarios: Scenario[],
  opts: BenchOptions,
  afterWrites: () => Promise<void>,
): Promise<Tally[]> {
  const tallies = scenarios.map(
    (scenario): Tally => ({ scenario, samples: [], pairs: [], non2xx: 0, errors: 0, timeouts: 0, statuses: {} }),
  );
  const ops = OPS.filter((op) => tallies.some((t) => t.scenario.op === op));
  const perRun = opts.warmup + opts.duration;
  const runsPerRound = ops.reduce((n, op) => {
    const rows = tallies.filter((t) => t.scenario.op === op);
    const tierRuns = rows.filter((t) => t.scenario.target !== 'baseline').length;
    const groups = new Set(rows.filter((t) => t.scenario.target !== 'baseline').map((t) => t.scenario.target)).size;
    return n + (rows.length > tierRuns ? tierRuns + groups + 1 : tierRuns);
  }, 0);
  const total = perRun * runsPerRound * opts.rounds + opts.warmup * scenarios.length;
  const variants = [...servers.keys()];
  console.error(
    `measuring ${scenarios.length} scenarios × ${opts.rounds} round(s) (${runsPerRound} runs a round: ` +
      `${variants.length > 1 ? `B ${variants.map((v) => `T(${VARIANT_LABEL[v]})`).join(' ')} B, order alternating` : 'baseline between every tier'}), ` +
      `${opts.warmup} s warm-up + ${opts.duration} s each ≈ ${Math.ceil((total * 1.08) / 60)} min`,
  );
  const request = (s: Scenario) => ({
    url: `${servers.get(s.variant)!.base}${s.path}`,
    method: s.method,
    connections: opts.connections,
    headers: s.headers,
    body: s.body,
    idReplacement: s.body !== undefined,
    timeout: 10,
  });
  // One pass over every scenario (on both children) before round 1: the API process has just
  // served 1,500 inserts, and without this the first scenarios measured run on colder JIT code and
  // a messier heap than later ones (seen as 30–50 % lower req/s in round 1 than round 2).
  if (opts.warmup > 0) {
    for (const tally of tallies) count(tally, await runAutocannon({ ...request(tally.scenario), duration: opts.warmup }));
  }

  const runOnce = async (tally: Tally, round: number, seq: number): Promise<Sample> => {
    const { scenario } = tally;
    const server = servers.get(scenario.variant)!;
    const meter = meters.get(scenario.variant)!;
    const common = request(scenario);
    if (opts.warmup > 0) count(tally, await runAutocannon({ ...common, duration: opts.warmup }));
    // A run that ends on a duration drops the requests still in flight: the app (rightly) cancels
    // their statements and destroys those connections (a cancel may land on the next statement),
    // so the next run began by reconnecting up to a pool's worth and paying cold backends — up to
    // 0.3× of a tenant run's req/s and p99s of 300 ms, none of it in the baseline, which has no
    // cancellation. A short run that ends only when every request is answered refills the pools first.
    count(tally, await runAutocannon({ ...common, amount: opts.connections * 4 }));
    if (opts.cpuProf) await server.profile('start');
    await meter.start();
    const r = await runAutocannon({ ...common, duration: opts.duration });
    const cpu = await meter.stop(r.requests.total);
    if (opts.cpuProf) {
      const suffix = scenario.target === 'baseline' ? '' : `-${scenario.variant}`;
      const file = join(opts.cpuProf, `r${round + 1}-${seq}-${scenario.op}-${scenario.target}${suffix}.cpuprofile`);
      await server.profile('stop', file);
      console.error(`    profile: ${file}`);
    }
    count(tally, r);
    const sample: Sample = { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, cpu };
    tally.samples.push(sample);
    console.error(
      `  round ${round + 1}/${opts.rounds}  ${OP_LABEL[scenario.op].padEnd(24)} ${scenarioName(scenario).padEnd(22)} ` +
        `${sample.rps.toFixed(0).padStart(6)} req/s  p50 ${sample.p50} ms  p99 ${sample.p99} ms  ` +
        `CPU/req: api ${fmtUs(cpu.serverUs)} pg ${fmtUs(cpu.postgresUs)} µs, machine ${fmtPct(cpu.machineBusyPct)} (other ${fmtPct(cpu.otherBusyPct)})` +
        (r.non2xx || r.errors || r.timeouts ? `  !! non-2xx ${r.non2xx} errors ${r.errors} timeouts ${r.timeouts}` : ''),
    );
    return sample;
  };

  const started = Date.now();
  for (let round = 0; round < opts.rounds; round++) {
    // Paired: on a shared machine the speed of the box drifts by tens of percent within a minute
    // (neighbours, steal), far more than the effect measured. So every tier's runs sit between two
    // baseline runs of the same operation — B T1 B T2 B T3 B, or with both fence variants
    // B T1on T1off B T2off T2on B … — and are compared with their mean; both variants of a tier
    // share that mean, so their difference is (Ton − Toff) / B of adjacent runs. The tier order
    // rotates between rounds and so does the operation order, so no tier always goes first and
    // no operation always follows the writes.
    const order = rotate(ops, round % ops.length);
    let seq = 0;
    for (const op of order) {
      const rows = tallies.filter((t) => t.scenario.op === op);
      const baseline = rows.find((t) => t.scenario.target === 'baseline');
      const targets = TIER_TARGETS.filter((target) => rows.some((t) => t.scenario.target === target));
      const targetOrder = targets.length ? rotate(targets, round % targets.length) : [];
      const group = (target: string) =>
        variantOrder(variants, round, op, target)
          .map((v) => rows.find((t) => t.scenario.target === target && t.scenario.variant === v))
          .filter((t): t is Tally => t !== undefined);
      if (!baseline) {
        for (const target of targetOrder) for (const t of group(target)) await runOnce(t, round, ++seq);
        if (op === 'write') await afterWrites();
        continue;
      }
      let before = await runOnce(baseline, round, ++seq);
      for (const target of targetOrder) {
        const runs: Array<[Tally, Sample]> = [];
        for (const t of group(target)) runs.push([t, await runOnce(t, round, ++seq)]);
        const after = await runOnce(baseline, round, ++seq);
        const baseRps = (before.rps + after.rps) / 2;
        const baseApi = before.cpu.serverUs !== null && after.cpu.serverUs !== null ? (before.cpu.serverUs + after.cpu.serverUs) / 2 : null;
        for (const [t, sample] of runs) {
          t.pairs.push({
            rpsRatio: sample.rps / baseRps,
            apiCpuRatio: baseApi !== null && sample.cpu.serverUs ? baseApi / sample.cpu.serverUs : null,
          });
        }
        before = after;
      }
      // Fresh statistics for the rows the write runs added (BenchDatabase.analyze says why).
      if (op === 'write') await afterWrites();
    }
  }
  console.error(`measured ${opts.rounds} round(s) in ${((Date.now() - started) / 60_000).toFixed(1)} min`);
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

/**
 * A rough standard error of the median of `xs` (1.2533 × σ / √n, σ estimated robustly as
 * 1.4826 × the median absolute deviation); null below 3 values.
 */
function medianNoise(xs: number[]): number | null {
  if (xs.length < 3) return null;
  const m = median(xs);
  const mad = median(xs.map((x) => Math.abs(x - m)));
  return (1.2533 * 1.4826 * mad) / Math.sqrt(xs.length);
}

// ---------------------------------------------------------------------------------------------
// report

interface FenceRow {
  op: Op;
  target: string;
  on: number;
  off: number;
  /** Per round: ratio with the fence − ratio without (same baselines). */
  diffs: number[];
  diff: number;
  noise: number | null;
}

/** Defaults (`on`) against the child that turns one setting off (`off`: the fence, `limits-off`: the rate limits). */
function fenceRows(tallies: Tally[], without: Variant = 'off'): FenceRow[] {
  const rows: FenceRow[] = [];
  for (const op of OPS) {
    for (const target of TIER_TARGETS) {
      const on = tallies.find((t) => t.scenario.op === op && t.scenario.target === target && t.scenario.variant === 'on');
      const off = tallies.find((t) => t.scenario.op === op && t.scenario.target === target && t.scenario.variant === without);
      if (!on?.pairs.length || !off?.pairs.length || on.pairs.length !== off.pairs.length) continue;
      const diffs = on.pairs.map((p, i) => p.rpsRatio - off.pairs[i].rpsRatio);
      rows.push({
        op,
        target,
        on: median(on.pairs.map((p) => p.rpsRatio)),
        off: median(off.pairs.map((p) => p.rpsRatio)),
        diffs,
        diff: median(diffs),
        noise: medianNoise(diffs),
      });
    }
  }
  return rows;
}

function report(tallies: Tally[], opts: BenchOptions, meta: Record<string, string>): { failed: Tally[]; misses: string[] } {
  const lines: string[] = [];
  const both = opts.fence === 'both';
  const limitsBoth = opts.limits === 'both' && opts.fence !== 'off';
  lines.push('## Strata HTTP tenancy bench', '');
  for (const [k, v] of Object.entries(meta)) lines.push(`- ${k}: ${v}`);
  lines.push('');
  lines.push(
    `| operation | scenario | child | req/s (median) | req/s per run | p50 ms | p99 ms | non-2xx / errors | × baseline per round | × baseline (median) | ≥ ${TARGET_RATIO}× |`,
  );
  lines.push('|---|---|:-:|--:|---|--:|--:|--:|---|--:|:-:|');
  const failed: Tally[] = [];
  const misses: string[] = [];
  const ordered = (op: Op) =>
    tallies
      .filter((t) => t.scenario.op === op)
      .sort(
        (a, b) =>
          (a.scenario.target === 'baseline' ? -1 : TIER_TARGETS.indexOf(a.scenario.target)) -
            (b.scenario.target === 'baseline' ? -1 : TIER_TARGETS.indexOf(b.scenario.target)) ||
          VARIANTS.indexOf(a.scenario.variant) - VARIANTS.indexOf(b.scenario.variant),
      );
  for (const op of OPS) {
    for (const t of ordered(op)) {
      const rps = median(t.samples.map((s) => s.rps));
      const ratio = t.pairs.length ? median(t.pairs.map((p) => p.rpsRatio)) : NaN;
      const bad = t.non2xx + t.errors + t.timeouts;
      if (bad) failed.push(t);
      const isBaseline = t.scenario.target === 'baseline';
      const known = Number.isFinite(ratio);
      // The issue's target is about reads; a write's ratio is shown, not judged.
      const meets = isBaseline || op === 'write' ? '—' : !known ? 'n/a' : ratio >= TARGET_RATIO ? 'yes' : '**no**';
      if (!isBaseline && op !== 'write' && known && ratio < TARGET_RATIO) misses.push(`${OP_LABEL[op]} ${scenarioName(t.scenario)} ${ratio.toFixed(2)}×`);
      lines.push(
        `| ${OP_LABEL[op]} | ${t.scenario.target} | ${isBaseline ? '—' : VARIANT_LABEL[t.scenario.variant]} | ${rps.toFixed(0)} | ${t.samples.map((s) => s.rps.toFixed(0)).join(', ')} | ` +
          `${fmtMs(median(t.samples.map((s) => s.p50)))} | ${fmtMs(median(t.samples.map((s) => s.p99)))} | ` +
          `${t.non2xx} / ${t.errors + t.timeouts} | ${isBaseline ? '—' : t.pairs.map((p) => p.rpsRatio.toFixed(2)).join(', ') || 'n/a'} | ` +
          `${isBaseline ? '1.00' : known ? ratio.toFixed(2) : 'n/a'} | ${meets} |`,
      );
    }
  }

  const fence = both ? fenceRows(tallies) : [];
  const over: string[] = [];
  if (fence.length) {
    lines.push('');
    lines.push(`Placement fence: × baseline with the fence (PLACEMENT_FENCE default) and without (PLACEMENT_FENCE=false), same run, same baselines:`, '');
    lines.push(`| operation | tier | × baseline, fence on | × baseline, fence off | on − off | on − off per round | ± noise | within ${FENCE_BUDGET} |`);
    lines.push('|---|---|--:|--:|--:|---|--:|:-:|');
    for (const r of fence) {
      const ok = r.diff >= -FENCE_BUDGET;
      if (!ok) over.push(`${OP_LABEL[r.op]} ${r.target} ${fmtSigned(r.diff)}`);
      lines.push(
        `| ${OP_LABEL[r.op]} | ${r.target} | ${r.on.toFixed(2)} | ${r.off.toFixed(2)} | ${fmtSigned(r.diff)} | ${r.diffs.map(fmtSigned).join(', ')} | ` +
          `${r.noise === null ? 'n/a' : `±${r.noise.toFixed(3)}`} | ${ok ? 'yes' : `**no** (< −${FENCE_BUDGET})`} |`,
      );
    }
  }

  const limits = limitsBoth ? fenceRows(tallies, 'limits-off') : [];
  const limitsOver: string[] = [];
  if (limits.length) {
    lines.push('');
    lines.push(`Rate limits: × baseline with the limits (defaults: rate limits and concurrency budget) and without (RATE_LIMITS_ENABLED=false, TENANT_MAX_CONCURRENT_REQUESTS=0), same run, same baselines:`, '');
    lines.push(`| operation | tier | × baseline, limits on | × baseline, limits off | on − off | on − off per round | ± noise | within ${LIMITS_BUDGET} |`);
    lines.push('|---|---|--:|--:|--:|---|--:|:-:|');
    for (const r of limits) {
      const ok = r.diff >= -LIMITS_BUDGET;
      if (!ok) limitsOver.push(`${OP_LABEL[r.op]} ${r.target} ${fmtSigned(r.diff)}`);
      lines.push(
        `| ${OP_LABEL[r.op]} | ${r.target} | ${r.on.toFixed(2)} | ${r.off.toFixed(2)} | ${fmtSigned(r.diff)} | ${r.diffs.map(fmtSigned).join(', ')} | ` +
          `${r.noise === null ? 'n/a' : `±${r.noise.toFixed(3)}`} | ${ok ? 'yes' : `**no** (< −${LIMITS_BUDGET})`} |`,
      );
    }
  }

  lines.push('');
  lines.push(
    'Where the CPU goes (µs of CPU per completed request, medians over rounds; API process = the child that served the run; ' +
      'PostgreSQL = the backends of the bench databases; "other processes" = busy cores not explained by that API child, those ' +
      'backends and the load generator):',
    '',
  );
  lines.push('| operation | scenario | child | API process | PostgreSQL | load generator | API CPU: baseline ÷ this | machine busy | of it other processes |');
  lines.push('|---|---|:-:|--:|--:|--:|--:|--:|--:|');
  for (const op of OPS) {
    for (const t of ordered(op)) {
      const m = (f: (c: CpuUsagePerRequest) => number | null) => {
        const xs = t.samples.map((s) => f(s.cpu)).filter((x): x is number => x !== null);
        return xs.length ? median(xs) : null;
      };
      const isBaseline = t.scenario.target === 'baseline';
      const cpuRatios = t.pairs.map((p) => p.apiCpuRatio).filter((x): x is number => x !== null);
      const cpuRatio = isBaseline ? '1.00' : cpuRatios.length ? median(cpuRatios).toFixed(2) : 'n/a';
      lines.push(
        `| ${OP_LABEL[op]} | ${t.scenario.target} | ${isBaseline ? '—' : VARIANT_LABEL[t.scenario.variant]} | ${fmtUs(m((c) => c.serverUs))} | ${fmtUs(m((c) => c.postgresUs))} | ` +
          `${fmtUs(m((c) => c.benchUs))} | ${cpuRatio} | ${fmtPct(m((c) => c.machineBusyPct))} | ${fmtPct(m((c) => c.otherBusyPct))} |`,
      );
    }
  }
  lines.push('');
  lines.push(
    `req/s and latencies are medians over runs; × baseline compares each tier run with the mean of the baseline runs just ` +
      `before and after it (same operation), one ratio per round, and takes their median; the CPU ratio is paired the same way. ` +
      `non-2xx / errors count warm-ups too. ` +
      `Target (issue): every tier ≥ ${TARGET_RATIO}× the baseline of the same read (writes are shown, not judged).`,
  );
  lines.push(misses.length ? `Below target: ${misses.join('; ')}.` : 'Every tier meets the read target.');
  if (fence.length) {
    lines.push(
      `Fence: on − off is the median of the per-round differences (each round's fence-on and fence-off runs sit between the same ` +
        `two baseline runs, in alternating order), not the difference of the two medians; ± noise is a rough standard error of that ` +
        `median (from the spread of the per-round differences), n/a below 3 rounds. Budget: every difference ≥ −${FENCE_BUDGET}.`,
    );
    lines.push(
      over.length
        ? `Fence costs more than ${FENCE_BUDGET}: ${over.join('; ')} (compare with ± noise before concluding).`
        : `Every difference is within ${FENCE_BUDGET}.`,
    );
  }
  if (limits.length) {
    lines.push(`Limits: on − off as for the fence (the limits-on child is the defaults child, the same runs). Budget: every difference ≥ −${LIMITS_BUDGET}.`);
    lines.push(
      limitsOver.length
        ? `Limits cost more than ${LIMITS_BUDGET}: ${limitsOver.join('; ')} (compare with ± noise before concluding).`
        : `Every difference is within ${LIMITS_BUDGET}.`,
    );
  }
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

function fmtSigned(x: number): string {
  const s = x.toFixed(3);
  return x >= 0 ? `+${s}` : s.replace('-', '−');
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

function describeEnvironment(
  opts: BenchOptions,
  servers: Map<Variant, BenchServer>,
  pgVersion: string,
  pgSettings: Record<string, string>,
): Record<string, string> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not a git checkout
  }
  const cpu = cpus();
  const variants = [...servers.keys()];
  const ready = servers.get(variants[0])!.ready;
  const layout =
    variants.length > 1 ? `rounds of B ${variants.map((v) => `T(${VARIANT_LABEL[v]})`).join(' ')} B per tier (order alternating)` : 'baseline run between every tier run';
  return {
    command: `node dist/bench/http-tenancy.bench.js ${process.argv.slice(2).join(' ')}`.trim(),
    load: `autocannon, ${opts.connections} connections, ${opts.warmup} s warm-up + ${opts.duration} s per run, ${opts.rounds} round(s), ${layout}`,
    machine: `${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, Node ${process.version}, PostgreSQL ${pgVersion}, commit ${commit}`,
    postgres: Object.entries(pgSettings)
      .map(([k, v]) => `${k}=${v}`)
      .join(', '),
    pools: `DATA_POOL_MAX ${ready.pools.dataPoolMax} (baseline DataSource: same), SILO_POOL_MAX ${ready.pools.siloPoolMax}, registry cache TTL ${ready.pools.registryCacheTtlMs} ms`,
    children:
      variants
        .map((v) => `${VARIANT_LABEL[v]}: API child pid ${servers.get(v)!.child.pid}${v === 'on' ? '' : v === 'off' ? ' (PLACEMENT_FENCE=false)' : ' (RATE_LIMITS_ENABLED=false, TENANT_MAX_CONCURRENT_REQUESTS=0)'}`)
        .join('; ') + `; baselines served by the ${VARIANT_LABEL[variants[0]]} child`,
    'rate limits': ready.rateLimitsEnabled
      ? `on (tenants on plan ${BENCH_PLAN}, rate 1,000,000/s, 1,000 requests in flight; RATE_LIMIT_USER_PER_SECOND 1,000,000), buckets ${ready.rateLimitsShared ? 'synced through Redis (REDIS_URL)' : 'local only (no REDIS_URL)'}`
      : 'off',
    data:
      `3 tenants (pool, bridge, silo), 1 project + ${INVOICES_PER_TENANT} invoices each, created through the API; ` +
      'every write run adds invoices (unique numbers from autocannon ids), the baseline\'s to the pool tenant',
  };
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true });
  const variants = variantsOf(opts);
  const db = new BenchDatabase();
  const servers = new Map<Variant, BenchServer>();
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.all(
        [...servers.values()].map((s) => s.stop().catch((err) => console.error(`stopping the ${VARIANT_LABEL[s.variant]} bench server failed:`, err))),
      );
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
    const pgSettings = await db.settings(['synchronous_commit', 'fsync', 'max_connections', 'shared_buffers', 'autovacuum']);
    // A rate and a concurrency budget no run reaches: every request pays for both buckets and for
    // taking and giving back a slot, and none is refused or queued, so limits on − off is their cost.
    // (At the default of 8 in flight, 32 connections on one tenant queue 24 requests: that measures
    // the budget doing its job, a throttle, not what it costs.)
    await db.addPlan(BENCH_PLAN, 1_000_000, 1000);
    // One after the other: two Nest apps booting at once would only slow each other down.
    for (const variant of variants) {
      const server = await startServer(db, opts.breakdown, variant);
      servers.set(variant, server);
      console.error(`API child (${VARIANT_LABEL[variant]}) pid ${server.child.pid} on ${server.base}`);
    }
    const primary = servers.get(variants[0])!;
    console.error(`onboarding pool, bridge and silo tenants through the ${VARIANT_LABEL[primary.variant]} child`);
    const tenants: BenchTenant[] = [];
    for (const tier of ['pool', 'bridge', 'silo'] as const) tenants.push(await onboard(primary.base, primary.ready.adminToken, db, tier));
    const all = scenariosFor(tenants, variants, opts.breakdown);
    await preflight(servers, all, tenants.find((t) => t.tier === 'pool')!);
    const only = opts.only;
    const scenarios = all.filter((s) => (!only || only.includes(s.target)) && opts.ops.includes(s.op));
    if (!scenarios.length) throw new Error(`--only ${only?.join(',')} --op ${opts.ops.join(',')} selects no scenario`);

    const databases = [db.name, ...(await db.siloDatabases())];
    const meters = new Map<Variant, CpuMeter>();
    for (const [variant, server] of servers) meters.set(variant, await CpuMeter.open(db.adminUrl, server.child.pid, databases));
    await db.analyze();
    const tallies = await measure(servers, meters, scenarios, opts, () => db.analyze()).finally(() => Promise.all([...meters.values()].map((m) => m.close())));
    const { failed } = report(tallies, opts, describeEnvironment(opts, servers, pgVersion, pgSettings));
    if (failed.length) {
      console.error('\n!! BENCH FAILED: requests did not all succeed, so the numbers above are not valid:');
      for (const t of failed) {
        console.error(
          `!!   ${OP_LABEL[t.scenario.op]} ${scenarioName(t.scenario)}: non-2xx ${t.non2xx}, errors ${t.errors}, timeouts ${t.timeouts}, ` +
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
