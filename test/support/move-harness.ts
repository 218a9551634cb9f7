import type { INestApplication } from '@nestjs/common';
import type { Server } from 'node:http';
import { Client } from 'pg';
import type { Tier } from '#strata/control-plane';
import { FENCE_LOCK_CLASS } from '#strata/tenancy/platform';
import { TERMINAL_PHASES, type MovePhase, type TenantMoveView } from '#strata/moves';
import type { OnboardedTenant, TestApp } from './test-app';
import { uniqueSlug } from './test-database';

/**
 * Shared builders for tenant-move tests (libs/platform/moves): request and follow moves over the admin API,
 * drive a tenant with a steady stream of acknowledged writes and checked reads while it moves, keep
 * other tenants busy, and compare what the writer was told with the rows of the tenant's new home.
 *
 * Everything goes over real HTTP (fetch with keep-alive against the app's listening server), so a
 * write counts as acknowledged exactly when a client would believe it: a 2xx answer.
 */

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();

// --- HTTP ----------------------------------------------------------------------------------------

/** An API instance: a TestApp, or a second app built with createApp() on the same database. */
export type ApiTarget = TestApp | INestApplication;

export interface ApiAnswer<B = any> {
  /** 0 when the request never got an answer (network error, timeout). */
  status: number;
  body: B;
  ms: number;
  /** The network error, when status is 0. */
  error?: string;
  /** The Retry-After header, when the answer had one. */
  retryAfter?: string;
}

const baseUrls = new WeakMap<object, Promise<string>>();

/** The instance's base URL; makes its HTTP server listen on an ephemeral port of 127.0.0.1 first if it does not yet. */
export function baseUrlOf(target: ApiTarget): Promise<string> {
  const app = 'adminToken' in target ? target.app : target;
  let url = baseUrls.get(app);
  if (!url) {
    url = (async () => {
      const server = app.getHttpServer() as Server;
      if (!server.listening) await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
      const address = server.address();
      if (!address || typeof address === 'string') throw new Error('the app server has no TCP address');
      return `http://127.0.0.1:${address.port}`;
    })();
    baseUrls.set(app, url);
  }
  return url;
}

/** The headers that make a request `who`'s (its wire tenant and bearer token). */
export const tenantHeaders = (who: Pick<OnboardedTenant, 'slug' | 'token'>) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });

/** One JSON request; never throws (a network failure is status 0 with `error`). */
export async function callApi<B = any>(
  target: ApiTarget | string,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  opts: { headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<ApiAnswer<B>> {
  const base = typeof target === 'string' ? target : await baseUrlOf(target);
  const started = now();
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body, ms: now() - started, retryAfter: res.headers.get('retry-after') ?? undefined };
  } catch (err) {
    return { status: 0, body: undefined as B, ms: now() - started, error: (err as Error).message };
  }
}

const describeAnswer = (a: ApiAnswer) => (a.status === 0 ? `network error (${a.error})` : `${a.status} ${JSON.stringify(a.body)}`.slice(0, 400));

// --- the moves API -------------------------------------------------------------------------------

const admin = (t: TestApp) => ({ authorization: `Bearer ${t.adminToken}` });

/** POST /admin/tenants/:id/moves; returns the 202 body, throws on any other answer. */
export async function requestMove(t: TestApp, tenantId: string, toTier: Tier, toPoolId?: string): Promise<TenantMoveView> {
  const res = await callApi<TenantMoveView>(t, 'POST', `/admin/tenants/${tenantId}/moves`, {
    headers: admin(t),
    body: toPoolId === undefined ? { toTier } : { toTier, toPoolId },
  });
  if (res.status !== 202) throw new Error(`requesting a move of ${tenantId} to ${toTier}/${toPoolId ?? '(default)'} answered ${describeAnswer(res)}`);
  return res.body;
}

/** GET /admin/moves/:id. */
export async function getMove(t: TestApp, moveId: string): Promise<TenantMoveView> {
  const res = await callApi<TenantMoveView>(t, 'GET', `/admin/moves/${moveId}`, { headers: admin(t) });
  if (res.status !== 200) throw new Error(`GET /admin/moves/${moveId} answered ${describeAnswer(res)}`);
  return res.body;
}

/**
 * Polls GET /admin/moves/:id until the move is in one of `until` (default: any terminal phase) or
 * in a terminal phase anyway (a move that failed never reaches `done`: the caller sees why); throws
 * on timeout with the last view.
 */
export async function waitForMove(
  t: TestApp,
  moveId: string,
  opts: { until?: readonly MovePhase[]; timeoutMs?: number; everyMs?: number } = {},
): Promise<TenantMoveView> {
  const until = opts.until ?? TERMINAL_PHASES;
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: TenantMoveView | undefined;
  for (;;) {
    last = await getMove(t, moveId);
    if (until.includes(last.phase) || TERMINAL_PHASES.includes(last.phase)) return last;
    if (Date.now() > deadline) throw new Error(`move ${moveId} still in ${last.phase} after ${opts.timeoutMs ?? 30_000} ms: ${JSON.stringify(last)}`);
    await sleep(opts.everyMs ?? 50);
  }
}

/** Requests a move and waits until it ends (done, failed or cancelled). */
export async function moveAndWait(t: TestApp, tenantId: string, toTier: Tier, toPoolId?: string, timeoutMs = 30_000): Promise<TenantMoveView> {
  const requested = await requestMove(t, tenantId, toTier, toPoolId);
  return waitForMove(t, requested.id, { timeoutMs });
}

/** What `checks` of a finished move must say: every table verified with equal counts and checksums. */
export function checkMismatches(view: TenantMoveView): string[] {
  if (!view.checks.length) return ['no checks recorded'];
  return view.checks
    .filter((c) => c.sourceRows !== c.targetRows || c.sourceChecksum !== c.targetChecksum)
    .map((c) => `${c.table}: ${c.sourceRows}/${c.sourceChecksum} vs ${c.targetRows}/${c.targetChecksum}`);
}

/** When the move's cutover phase began (the fence; the flip follows), from its phase records. */
export function cutoverStartedAt(view: TenantMoveView): Date | undefined {
  const p = view.phases.find((x) => x.phase === 'cutover');
  return p ? new Date(p.startedAt) : undefined;
}

// --- where a tenant lives ------------------------------------------------------------------------

export interface PhysicalHome {
  tier: Tier;
  poolId: string;
  host: string;
  port: number;
  database: string;
  schema: string;
}

/** The home a tenant of `slug` has on `tier` in pool `poolId` (names as the tier drivers derive them). */
export async function homeAt(t: TestApp, tier: Tier, poolId: string, slug: string): Promise<PhysicalHome> {
  const pools = await callApi<{ items: Array<{ id: string; host: string; port: number; database: string }> }>(t, 'GET', '/admin/pools', { headers: admin(t) });
  if (pools.status !== 200) throw new Error(`GET /admin/pools answered ${describeAnswer(pools)}`);
  const pool = pools.body.items.find((p) => p.id === poolId);
  if (!pool) throw new Error(`pool ${poolId} is not registered`);
  const ident = slug.replace(/-/g, '_');
  const { host, port } = pool;
  if (tier === 'pool') return { tier, poolId, host, port, database: pool.database, schema: 'shared' };
  if (tier === 'bridge') return { tier, poolId, host, port, database: pool.database, schema: `t_${ident}` };
  return { tier, poolId, host, port, database: `strata_t_${ident}`, schema: 'shared' };
}

/** The tenant's current home, from GET /admin/tenants/:id and GET /admin/pools. */
export async function tenantHome(t: TestApp, tenantId: string): Promise<PhysicalHome & { slug: string }> {
  const res = await callApi<{ tier: Tier; poolId: string; slug: string }>(t, 'GET', `/admin/tenants/${tenantId}`, { headers: admin(t) });
  if (res.status !== 200) throw new Error(`GET /admin/tenants/${tenantId} answered ${describeAnswer(res)}`);
  return { ...(await homeAt(t, res.body.tier, res.body.poolId, res.body.slug)), slug: res.body.slug };
}

/** Runs `sql` as the owner on `home`'s database, entered as the tenant (search_path, app.tenant_id), so FORCE RLS holds for any owner. */
export async function queryHome<R = Record<string, unknown>>(t: TestApp, home: PhysicalHome, tenantId: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = ownerClientOn(t, home);
  await c.connect();
  try {
    await c.query(`SELECT set_config('search_path', $1, false), set_config('app.tenant_id', $2, false)`, [`"${home.schema}"`, tenantId]);
    return (await c.query(sql, params)).rows as R[];
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Whether `home`'s database (and schema) still exists. */
export async function homeExists(t: TestApp, home: PhysicalHome): Promise<boolean> {
  try {
    const ns = await queryHome(t, home, '00000000-0000-0000-0000-000000000000', `SELECT 1 FROM pg_namespace WHERE nspname = $1`, [home.schema]);
    return ns.length > 0;
  } catch (err) {
    // 3D000: the database is gone (or going: 57P01 when it was dropped WITH (FORCE) under us).
    if (['3D000', '57P01'].includes((err as { code?: string }).code ?? '')) return false;
    throw err;
  }
}

/**
 * Waits until a home the tenant left is gone: a bridge schema or silo database dropped, or (pool,
 * a shared home) the tenant's rows deleted from it. Returns whether it went within `timeoutMs`.
 */
export async function waitForHomeGone(t: TestApp, home: PhysicalHome, tenantId: string, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const gone = home.tier === 'pool' ? (await rowsIn(t, home, tenantId)).projects.length === 0 : !(await homeExists(t, home));
    if (gone) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

/** Onboards a tenant on a given pool (TestApp.onboard uses the default pool of the tier), adds an owner and logs in. */
export async function onboardOn(t: TestApp, base: string, tier: Tier, poolId: string): Promise<OnboardedTenant> {
  const slug = uniqueSlug(base);
  const name = `${base} inc`;
  const created = await callApi(t, 'POST', '/admin/tenants', { headers: admin(t), body: { slug, name, tier, poolId } });
  if (created.status !== 201) throw new Error(`onboarding ${slug} on ${poolId} failed: ${describeAnswer(created)}`);
  const email = `owner@${slug}.test`;
  const password = 'correct-horse-battery';
  const user = await callApi(t, 'POST', `/admin/tenants/${created.body.id}/users`, { headers: admin(t), body: { email, password, role: 'owner' } });
  if (user.status !== 201) throw new Error(`adding a user to ${slug} failed: ${describeAnswer(user)}`);
  const login = await callApi(t, 'POST', '/auth/login', { headers: { 'X-Tenant': slug }, body: { email, password } });
  if (login.status !== 200) throw new Error(`login to ${slug} failed: ${describeAnswer(login)}`);
  return { id: created.body.id, slug, name, tier, email, password, userId: user.body.id, token: login.body.access_token };
}

function ownerClientOn(t: TestApp, home: Pick<PhysicalHome, 'host' | 'port' | 'database'>): Client {
  const owner = new URL(t.db.ownerUrl);
  const c = new Client({
    host: home.host,
    port: home.port,
    database: home.database,
    user: decodeURIComponent(owner.username),
    password: owner.password ? decodeURIComponent(owner.password) : undefined,
    connectionTimeoutMillis: 5000,
  });
  c.on('error', () => undefined);
  return c;
}

/**
 * Opens an owner transaction on `home` that holds ROW EXCLUSIVE on every tenant table of its schema,
 * as any in-flight write does: a mover installing its capture triggers (CREATE TRIGGER) waits
 * behind it, up to its lock_timeout. `release()` commits (nothing was changed).
 */
export async function holdWriteLocks(t: TestApp, home: PhysicalHome): Promise<{ release(): Promise<void> }> {
  const c = ownerClientOn(t, home);
  await c.connect();
  const tables = await c.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')`,
    [home.schema],
  );
  await c.query('BEGIN');
  await c.query(`LOCK TABLE ${tables.rows.map((r) => r.name).join(', ')} IN ROW EXCLUSIVE MODE`);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await c.query('COMMIT').catch(() => undefined);
      await c.end().catch(() => undefined);
    },
  };
}

/**
 * Waits until a mover's session on `home`'s server waits for a lock — any (its capture triggers
 * waiting for writers), or with `fence` only its exclusive fence lock at cutover; false on timeout.
 */
export async function waitForMoverBlocked(t: TestApp, home: PhysicalHome, opts: { fence?: boolean; timeoutMs?: number } = {}): Promise<boolean> {
  const c = ownerClientOn(t, home);
  await c.connect();
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      const r = await c.query(
        `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'strata-move-%' AND wait_event_type = 'Lock' AND ($1::boolean IS NOT TRUE OR query LIKE '%pg_advisory_xact_lock(%')`,
        [opts.fence ?? false],
      );
      if (r.rowCount) return true;
      if (Date.now() > deadline) return false;
      await sleep(10);
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** An open transaction on a tenant's home that holds what an app write unit in flight holds. */
export interface OpenWriteUnit {
  query(sql: string, params?: unknown[]): Promise<unknown[]>;
  commit(): Promise<void>;
}

/**
 * An owner session on `home`, entered as the tenant, with a transaction holding the tenant's fence
 * lock shared — as every app write unit does from its first statement to its commit (placement.fence.ts).
 * A mover's fenced drain waits for it (up to moveCutoverLockTimeoutMs); `query` writes as that unit.
 */
export async function openWriteUnit(t: TestApp, home: PhysicalHome, tenantId: string): Promise<OpenWriteUnit> {
  const c = ownerClientOn(t, home);
  await c.connect();
  await c.query('BEGIN');
  await c.query(`SELECT set_config('search_path', $1, true), set_config('app.tenant_id', $2, true), pg_advisory_xact_lock_shared(${FENCE_LOCK_CLASS}, hashtext($2))`, [
    `"${home.schema}"`,
    tenantId,
  ]);
  let open = true;
  return {
    async query(sql, params = []) {
      return (await c.query(sql, params)).rows;
    },
    async commit() {
      if (!open) return;
      open = false;
      await c.query('COMMIT').catch(() => undefined);
      await c.end().catch(() => undefined);
    },
  };
}

/** Drops the database of `home` (a silo home; never a pool's), on its server, as the owner. */
export async function dropDatabaseOf(t: TestApp, home: PhysicalHome): Promise<void> {
  if (home.tier !== 'silo') throw new Error(`only a silo home has a database of its own (${home.tier})`);
  const c = ownerClientOn(t, { ...home, database: 'postgres' });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${home.database.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export interface HomeRows {
  projects: Array<{ id: string; name: string }>;
  tasks: Array<{ id: string; project_id: string; title: string }>;
  invoices: Array<{ id: string; number: string }>;
}

/** The tenant's projects, tasks and invoices in `home`, by id. */
export async function rowsIn(t: TestApp, home: PhysicalHome, tenantId: string): Promise<HomeRows> {
  const q = (sql: string) => queryHome<any>(t, home, tenantId, sql, [tenantId]);
  const [projects, tasks, invoices] = [
    await q(`SELECT id::text, name FROM projects WHERE tenant_id = $1 ORDER BY id`),
    await q(`SELECT id::text, project_id::text, title FROM tasks WHERE tenant_id = $1 ORDER BY id`),
    await q(`SELECT id::text, number FROM invoices WHERE tenant_id = $1 ORDER BY id`),
  ];
  return { projects, tasks, invoices };
}

// --- a writer for the moving tenant --------------------------------------------------------------

export type WriteOp = 'create' | 'update' | 'delete' | 'invoice' | 'task';

export interface AckedWrite {
  op: WriteOp;
  /** The row's id (for `invoice`: the invoice id). */
  id: string;
  /** Project name after the write, invoice number, or task title. */
  value?: string;
  /** performance.now() at the answer. */
  at: number;
  ms: number;
}

export interface WriteError {
  op: WriteOp | 'read';
  answer: string;
  at: number;
}

export interface WriterReport {
  /** Writes acknowledged (2xx) in this run. */
  acked: number;
  ackedByOp: Record<WriteOp, number>;
  /** Every non-2xx answer or network error of this run's writes. */
  errors: WriteError[];
  maxLatencyMs: number;
  /** Latency of every write of this run, in ms, in completion order. */
  latencies: number[];
  /** Writes per second over the run. */
  rate: number;
  reads: number;
  /** Reads that failed (anything but 200, or 404 for a project whose delete was at least attempted). */
  readFailures: WriteError[];
  /** Reads that returned a project as it was before a write acknowledged before the read began. */
  staleReads: string[];
}

interface Version {
  name: string;
  /** When the write that set it was acknowledged; undefined while in flight or when it failed. */
  ackedAt?: number;
}

interface ProjectState {
  id: string;
  /** Names in the order they were written: a project's writes are serialised, so this is commit order. */
  versions: Version[];
  /** Names the row may have now (more than one after a failed update). */
  possibleNames: Set<string>;
  deleted: 'no' | 'acked' | 'maybe';
  deleteAttemptedAt?: number;
  deleteAckedAt?: number;
  busy: boolean;
  tasks: Map<string, string>;
  /** Titles of task creates that failed (the row may exist). */
  maybeTasks: Set<string>;
}

export interface WriterOptions {
  /** Writes in flight at once (default 4). */
  concurrency?: number;
  /** Target writes per second (default 150). */
  ratePerSec?: number;
  /** Read loops running beside the writes (default 1; each reads back to back with `readPauseMs` between). */
  readers?: number;
  readPauseMs?: number;
  /** Relative weights of the write kinds. */
  mix?: Partial<Record<WriteOp, number>>;
  /** Prefix of names and invoice numbers (default the tenant's slug). */
  label?: string;
}

const DEFAULT_MIX: Record<WriteOp, number> = { create: 30, update: 30, delete: 10, invoice: 20, task: 10 };

/**
 * A steady stream of writes for one tenant over HTTP (POST/PATCH/DELETE /projects, POST /invoices
 * with unique numbers, POST /projects/:id/tasks), a few in flight at once, with a log of every
 * acknowledged write and what the row must be now; plus reads of known projects that must never see
 * a project as it was before a write acknowledged before the read started. start()/stop() may be
 * called again: the log (and so the expected final state) carries over; stop() reports one run.
 * Writes to one project are never in flight together, so its acknowledged order is its commit order.
 */
export class TenantWriter {
  readonly projects = new Map<string, ProjectState>();
  /** Invoice number → id, for every acknowledged invoice. */
  readonly invoices = new Map<string, string>();
  /** Names of project creates and numbers of invoice creates that failed: their rows may or may not exist. */
  readonly maybeProjectNames = new Set<string>();
  readonly maybeInvoiceNumbers = new Set<string>();
  readonly log: AckedWrite[] = [];
  readonly allErrors: WriteError[] = [];

  private readonly opts: Required<Omit<WriterOptions, 'mix'>> & { mix: Record<WriteOp, number> };
  private seq = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private nextSlot = 0;
  private run = this.emptyRun();

  constructor(private readonly api: ApiTarget, readonly tenant: Pick<OnboardedTenant, 'id' | 'slug' | 'token'>, opts: WriterOptions = {}) {
    this.opts = {
      concurrency: opts.concurrency ?? 4,
      ratePerSec: opts.ratePerSec ?? 150,
      readers: opts.readers ?? 1,
      readPauseMs: opts.readPauseMs ?? 5,
      label: opts.label ?? `${tenant.slug}.${Math.random().toString(36).slice(2, 6)}`,
      mix: { ...DEFAULT_MIX, ...opts.mix },
    };
  }

  private emptyRun() {
    return {
      startedAt: now(),
      acked: 0,
      ackedByOp: { create: 0, update: 0, delete: 0, invoice: 0, task: 0 } as Record<WriteOp, number>,
      errors: [] as WriteError[],
      latencies: [] as number[],
      reads: 0,
      readFailures: [] as WriteError[],
      staleReads: [] as string[],
    };
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Acknowledged writes so far in this run. */
  get ackedInRun(): number {
    return this.run.acked;
  }

  start(): this {
    if (this.running) throw new Error('the writer is already running');
    this.running = true;
    this.run = this.emptyRun();
    this.nextSlot = now();
    this.loops = [
      ...Array.from({ length: this.opts.concurrency }, () => this.writeLoop()),
      ...Array.from({ length: this.opts.readers }, () => this.readLoop()),
    ];
    return this;
  }

  /** Waits until at least `n` writes of this run were acknowledged (or `timeoutMs` passed). */
  async waitForAcked(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.run.acked < n && Date.now() < deadline) await sleep(10);
  }

  /** Stops after the writes in flight are answered; reports this run. */
  async stop(): Promise<WriterReport> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
    const r = this.run;
    const seconds = Math.max(0.001, (now() - r.startedAt) / 1000);
    return {
      acked: r.acked,
      ackedByOp: { ...r.ackedByOp },
      errors: r.errors,
      maxLatencyMs: Math.round(Math.max(0, ...r.latencies)),
      latencies: r.latencies,
      rate: Math.round(r.acked / seconds),
      reads: r.reads,
      readFailures: r.readFailures,
      staleReads: r.staleReads,
    };
  }

  /** Projects whose final state is certain and that exist (for reads by other builders). */
  liveProjectIds(): string[] {
    return [...this.projects.values()].filter((p) => p.deleted === 'no').map((p) => p.id);
  }

  // --- writes ---

  private async writeLoop(): Promise<void> {
    const interval = 1000 / this.opts.ratePerSec;
    while (this.running) {
      const slot = Math.max(now(), this.nextSlot);
      this.nextSlot = slot + interval;
      const wait = slot - now();
      if (wait > 0) await sleep(wait);
      if (!this.running) break;
      await this.writeOnce();
    }
  }

  private pickOp(): WriteOp {
    const mix = this.opts.mix;
    const total = Object.values(mix).reduce((a, b) => a + b, 0);
    let r = Math.random() * total;
    for (const op of Object.keys(mix) as WriteOp[]) {
      r -= mix[op];
      if (r < 0) return op;
    }
    return 'create';
  }

  private pickProject(): ProjectState | undefined {
    const free = [...this.projects.values()].filter((p) => !p.busy && p.deleted === 'no');
    return free.length ? free[Math.floor(Math.random() * free.length)] : undefined;
  }

  private ack(op: WriteOp, id: string, value: string | undefined, a: ApiAnswer): void {
    this.run.acked++;
    this.run.ackedByOp[op]++;
    this.log.push({ op, id, value, at: now(), ms: a.ms });
  }

  private fail(op: WriteOp, a: ApiAnswer, what: string): void {
    const e = { op, answer: `${what}: ${describeAnswer(a)}`, at: now() };
    this.run.errors.push(e);
    this.allErrors.push(e);
  }

  private async writeOnce(): Promise<void> {
    let op = this.pickOp();
    const target = op === 'update' || op === 'delete' || op === 'task' ? this.pickProject() : undefined;
    if (!target && (op === 'update' || op === 'delete' || op === 'task')) op = 'create';
    const headers = tenantHeaders(this.tenant);
    const n = ++this.seq;
    const label = this.opts.label;
    if (target) target.busy = true;
    try {
      let a: ApiAnswer;
      switch (op) {
        case 'create': {
          const name = `${label} p${n}`;
          a = await callApi(this.api, 'POST', '/projects', { headers, body: { name } });
          if (a.status === 201 && a.body?.name === name && typeof a.body.id === 'string') {
            const ackedAt = now();
            this.projects.set(a.body.id, {
              id: a.body.id,
              versions: [{ name, ackedAt }],
              possibleNames: new Set([name]),
              deleted: 'no',
              busy: false,
              tasks: new Map(),
              maybeTasks: new Set(),
            });
            this.ack(op, a.body.id, name, a);
          } else {
            this.maybeProjectNames.add(name);
            this.fail(op, a, `POST /projects ${name}`);
          }
          break;
        }
        case 'update': {
          const p = target!;
          const name = `${label} p${n} renamed`;
          const version: Version = { name };
          p.versions.push(version);
          a = await callApi(this.api, 'PATCH', `/projects/${p.id}`, { headers, body: { name } });
          if (a.status === 200 && a.body?.name === name) {
            version.ackedAt = now();
            p.possibleNames = new Set([name]);
            this.ack(op, p.id, name, a);
          } else {
            p.possibleNames.add(name);
            this.fail(op, a, `PATCH /projects/${p.id}`);
          }
          break;
        }
        case 'delete': {
          const p = target!;
          p.deleteAttemptedAt = now();
          a = await callApi(this.api, 'DELETE', `/projects/${p.id}`, { headers });
          if (a.status === 204) {
            p.deleted = 'acked';
            p.deleteAckedAt = now();
            this.ack(op, p.id, undefined, a);
          } else {
            p.deleted = 'maybe';
            this.fail(op, a, `DELETE /projects/${p.id}`);
          }
          break;
        }
        case 'invoice': {
          const number = `${label}-${n}`;
          a = await callApi(this.api, 'POST', '/invoices', { headers, body: { number, amount: n, currency: 'EUR' } });
          if (a.status === 201 && a.body?.number === number && typeof a.body.id === 'string') {
            this.invoices.set(number, a.body.id);
            this.ack(op, a.body.id, number, a);
          } else {
            this.maybeInvoiceNumbers.add(number);
            this.fail(op, a, `POST /invoices ${number}`);
          }
          break;
        }
        case 'task': {
          const p = target!;
          const title = `${label} t${n}`;
          a = await callApi(this.api, 'POST', `/projects/${p.id}/tasks`, { headers, body: { title } });
          if (a.status === 201 && a.body?.title === title && typeof a.body.id === 'string') {
            p.tasks.set(a.body.id, title);
            this.ack(op, a.body.id, title, a);
          } else {
            p.maybeTasks.add(title);
            this.fail(op, a, `POST /projects/${p.id}/tasks`);
          }
          break;
        }
      }
      this.run.latencies.push(a.ms);
    } finally {
      if (target) target.busy = false;
    }
  }

  // --- reads ---

  private async readLoop(): Promise<void> {
    while (this.running) {
      const known = [...this.projects.values()];
      if (!known.length) {
        await sleep(10);
        continue;
      }
      const p = known[Math.floor(Math.random() * known.length)];
      await this.readOnce(p);
      if (this.opts.readPauseMs) await sleep(this.opts.readPauseMs);
    }
  }

  private async readOnce(p: ProjectState): Promise<void> {
    const started = now();
    // What was acknowledged before this read began: the read must show that or something newer.
    let floor = -1;
    p.versions.forEach((v, i) => {
      if (v.ackedAt !== undefined && v.ackedAt < started) floor = i;
    });
    const deletedBefore = p.deleteAckedAt !== undefined && p.deleteAckedAt < started;
    const a = await callApi(this.api, 'GET', `/projects/${p.id}`, { headers: tenantHeaders(this.tenant) });
    this.run.reads++;
    const where = `GET /projects/${p.id}`;
    if (a.status === 404 && a.body?.error === 'project_not_found') {
      // Fine once a delete was sent (it may have committed before its answer); anything else lost the row.
      if (p.deleteAttemptedAt === undefined) this.readFailure(a, `${where} (never deleted)`);
      return;
    }
    if (a.status !== 200) return this.readFailure(a, where);
    if (deletedBefore) {
      this.run.staleReads.push(`${where} returned ${JSON.stringify(a.body?.name)} although its delete was acknowledged ${Math.round(started - p.deleteAckedAt!)} ms before the read began`);
      return;
    }
    const index = p.versions.findIndex((v) => v.name === a.body?.name);
    if (index < 0) {
      this.readFailure(a, `${where} (a name this writer never wrote)`);
    } else if (index < floor) {
      this.run.staleReads.push(
        `${where} returned ${JSON.stringify(a.body.name)} (version ${index}) although ${JSON.stringify(p.versions[floor].name)} (version ${floor}) was acknowledged ${Math.round(started - p.versions[floor].ackedAt!)} ms before the read began`,
      );
    }
  }

  private readFailure(a: ApiAnswer, what: string): void {
    const e = { op: 'read' as const, answer: `${what}: ${describeAnswer(a)}`, at: now() };
    this.run.readFailures.push(e);
    this.allErrors.push(e);
  }
}

// --- background traffic for other tenants --------------------------------------------------------

export interface TrafficReport {
  requests: number;
  errors: string[];
}

/**
 * Reads and writes for other tenants while something else happens: per tenant one loop of
 * GET /projects, GET /projects/:id, POST /projects and POST /invoices; any answer that is not the
 * expected 2xx, or a row that is not the tenant's own, counts as an error.
 */
export class BackgroundTraffic {
  private running = false;
  private loops: Promise<void>[] = [];
  private requests = 0;
  private errors: string[] = [];
  private seq = 0;
  /** Names and invoice numbers carry it: unique across instances and runs on the same tenants. */
  private readonly runTag = Math.random().toString(36).slice(2, 8);

  constructor(private readonly api: ApiTarget, private readonly tenants: Array<Pick<OnboardedTenant, 'id' | 'slug' | 'token'>>, private readonly pauseMs = 10) {}

  start(): this {
    if (this.running) throw new Error('background traffic is already running');
    this.running = true;
    this.requests = 0;
    this.errors = [];
    this.loops = this.tenants.map((tenant) => this.loop(tenant));
    return this;
  }

  async stop(): Promise<TrafficReport> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
    return { requests: this.requests, errors: this.errors };
  }

  private async loop(tenant: Pick<OnboardedTenant, 'id' | 'slug' | 'token'>): Promise<void> {
    const headers = tenantHeaders(tenant);
    const mine: string[] = [];
    const check = (a: ApiAnswer, status: number, what: string, ok: (b: any) => boolean = () => true) => {
      this.requests++;
      if (a.status !== status || !ok(a.body)) this.errors.push(`${tenant.slug} ${what}: ${describeAnswer(a)}`);
    };
    for (let i = 0; this.running; i++) {
      const n = ++this.seq;
      switch (i % 4) {
        case 0: {
          const name = `${tenant.slug} bg-${this.runTag}-${n}`;
          const a = await callApi(this.api, 'POST', '/projects', { headers, body: { name } });
          check(a, 201, 'POST /projects', (b) => b?.name === name);
          if (a.status === 201) mine.push(a.body.id);
          break;
        }
        case 1: {
          const a = await callApi(this.api, 'GET', '/projects?limit=20', { headers });
          check(a, 200, 'GET /projects', (b) => Array.isArray(b?.items) && b.items.every((p: { name: string }) => p.name.startsWith(`${tenant.slug} `)));
          break;
        }
        case 2: {
          if (!mine.length) break;
          const id = mine[Math.floor(Math.random() * mine.length)];
          check(await callApi(this.api, 'GET', `/projects/${id}`, { headers }), 200, `GET /projects/${id}`, (b) => b?.id === id);
          break;
        }
        case 3: {
          const number = `${tenant.slug}-bg-${this.runTag}-${n}`;
          check(await callApi(this.api, 'POST', '/invoices', { headers, body: { number, amount: n, currency: 'EUR' } }), 201, 'POST /invoices', (b) => b?.number === number);
          break;
        }
      }
      if (this.pauseMs) await sleep(this.pauseMs);
    }
  }
}

// --- comparing the log with the new home ---------------------------------------------------------

export interface TargetComparison {
  home: PhysicalHome;
  rows: HomeRows;
  /** Every way the home differs from the writer's log; empty when it matches. */
  mismatches: string[];
}

/**
 * Reads the tenant's rows from its current home as the owner (tier, pool, schema and database from
 * the admin API) and compares them with the writer's log: every acknowledged create exists exactly
 * once with its last acknowledged content, every acknowledged delete is gone (with its tasks), no
 * row exists that the writer never wrote (rows of failed writes are tolerated, as their outcome is
 * unknown), and the invoice numbers are unique and equal to the acknowledged set. `expected` rows
 * written outside the writer (seeded before it started) are passed in `extraProjectIds`.
 */
export async function compareTargetWithLog(
  t: TestApp,
  writer: TenantWriter,
  opts: { home?: PhysicalHome; extraProjectIds?: string[]; extraInvoiceNumbers?: string[]; extraTaskIds?: string[] } = {},
): Promise<TargetComparison> {
  if (writer.isRunning) throw new Error('stop the writer before comparing: its log must be final');
  const home = opts.home ?? (await tenantHome(t, writer.tenant.id));
  const rows = await rowsIn(t, home, writer.tenant.id);
  const mismatches: string[] = [];

  const count = <T>(items: T[], key: (x: T) => string) => {
    const m = new Map<string, number>();
    for (const x of items) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
    return m;
  };
  for (const [id, n] of count(rows.projects, (p) => p.id)) if (n > 1) mismatches.push(`project ${id} is there ${n} times`);
  for (const [id, n] of count(rows.tasks, (x) => x.id)) if (n > 1) mismatches.push(`task ${id} is there ${n} times`);
  for (const [num, n] of count(rows.invoices, (i) => i.number)) if (n > 1) mismatches.push(`invoice number ${num} is there ${n} times`);

  const projectRows = new Map(rows.projects.map((p) => [p.id, p]));
  for (const p of writer.projects.values()) {
    const row = projectRows.get(p.id);
    if (p.deleted === 'acked' && row) mismatches.push(`project ${p.id} was deleted (acknowledged) but is there as ${JSON.stringify(row.name)}`);
    if (p.deleted === 'no' && !row) mismatches.push(`project ${p.id} (${[...p.possibleNames].join(' | ')}) was acknowledged but is missing`);
    if (row && !p.possibleNames.has(row.name)) {
      mismatches.push(`project ${p.id} is ${JSON.stringify(row.name)}, the log says ${[...p.possibleNames].map((n) => JSON.stringify(n)).join(' or ')}`);
    }
  }
  const extraProjects = new Set(opts.extraProjectIds ?? []);
  for (const row of rows.projects) {
    if (!writer.projects.has(row.id) && !extraProjects.has(row.id) && !writer.maybeProjectNames.has(row.name)) {
      mismatches.push(`project ${row.id} (${JSON.stringify(row.name)}) is in the home but was never written`);
    }
  }

  const taskRows = new Map(rows.tasks.map((x) => [x.id, x]));
  const knownTasks = new Set(opts.extraTaskIds ?? []);
  for (const p of writer.projects.values()) {
    for (const [id, title] of p.tasks) {
      knownTasks.add(id);
      const row = taskRows.get(id);
      const projectGone = p.deleted === 'acked';
      if (projectGone && row) mismatches.push(`task ${id} of deleted project ${p.id} is still there`);
      if (p.deleted === 'no' && !row) mismatches.push(`task ${id} (${title}) was acknowledged but is missing`);
      if (row && (row.title !== title || row.project_id !== p.id)) mismatches.push(`task ${id} is ${JSON.stringify(row)}, the log says ${title} in ${p.id}`);
    }
  }
  const maybeTitles = new Set([...writer.projects.values()].flatMap((p) => [...p.maybeTasks]));
  for (const row of rows.tasks) {
    if (!knownTasks.has(row.id) && !maybeTitles.has(row.title)) mismatches.push(`task ${row.id} (${JSON.stringify(row.title)}) is in the home but was never written`);
  }

  const invoiceRows = new Map(rows.invoices.map((i) => [i.number, i]));
  for (const [number, id] of writer.invoices) {
    const row = invoiceRows.get(number);
    if (!row) mismatches.push(`invoice ${number} (${id}) was acknowledged but is missing`);
    else if (row.id !== id) mismatches.push(`invoice ${number} has id ${row.id}, the API answered ${id}`);
  }
  const extraInvoices = new Set(opts.extraInvoiceNumbers ?? []);
  for (const row of rows.invoices) {
    if (!writer.invoices.has(row.number) && !extraInvoices.has(row.number) && !writer.maybeInvoiceNumbers.has(row.number)) {
      mismatches.push(`invoice ${row.number} (${row.id}) is in the home but was never written`);
    }
  }
  return { home, rows, mismatches };
}

/** compareTargetWithLog, asserted: the home equals the log. Returns the comparison (home, rows). */
export async function expectTargetMatchesLog(t: TestApp, writer: TenantWriter, opts: Parameters<typeof compareTargetWithLog>[2] = {}): Promise<TargetComparison> {
  const comparison = await compareTargetWithLog(t, writer, opts);
  expect(comparison.mismatches).toEqual([]);
  // Anything the writer acknowledged and did not delete is there: not an empty (or wrong) home compared.
  const live = [...writer.projects.values()].filter((p) => p.deleted === 'no').length;
  expect(comparison.rows.projects.length).toBeGreaterThanOrEqual(live);
  expect(comparison.rows.invoices.length).toBeGreaterThanOrEqual(writer.invoices.size);
  return comparison;
}

// --- one move under load, and what a clean one looks like ----------------------------------------

export interface MoveTarget {
  toTier: Tier;
  toPoolId?: string;
}

export interface MoveRun {
  /** `fromTier/fromPool -> toTier/toPool`. */
  direction: string;
  view: TenantMoveView;
  writes: WriterReport;
  traffic: TrafficReport;
  /** From the request to the terminal phase, as the client saw it. */
  moveMs: number;
}

/**
 * Runs `writer` (and `traffic`, when given) until `warmupAcked` writes are acknowledged, moves the
 * writer's tenant to `target` through the admin API and waits for the move to end, keeps writing
 * `tailMs` on the new home, then stops everything and reports. Always stops what it started.
 */
export async function moveUnderLoad(
  t: TestApp,
  writer: TenantWriter,
  target: MoveTarget,
  opts: { traffic?: BackgroundTraffic; warmupAcked?: number; tailMs?: number; timeoutMs?: number } = {},
): Promise<MoveRun> {
  writer.start();
  opts.traffic?.start();
  let view: TenantMoveView | undefined;
  let moveMs = 0;
  let failure: unknown;
  try {
    await writer.waitForAcked(opts.warmupAcked ?? 50);
    const started = now();
    view = await moveAndWait(t, writer.tenant.id, target.toTier, target.toPoolId, opts.timeoutMs);
    moveMs = Math.round(now() - started);
    await sleep(opts.tailMs ?? 300);
  } catch (err) {
    failure = err;
  }
  const writes = await writer.stop();
  const traffic = (await opts.traffic?.stop()) ?? { requests: 0, errors: [] };
  if (failure) throw failure;
  return { direction: `${view!.fromTier}/${view!.fromPoolId} -> ${view!.toTier}/${view!.toPoolId}`, view: view!, writes, traffic, moveMs };
}

/** How long each phase of a move took, in ms (`queued` from the request to the claim). */
export function phaseDurations(view: TenantMoveView): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of view.phases) if (p.finishedAt) out[p.phase] = Date.parse(p.finishedAt) - Date.parse(p.startedAt);
  if (view.startedAt) out.queued = Date.parse(String(view.startedAt)) - Date.parse(String(view.createdAt));
  return out;
}

/** One line of figures for a run (for the test's summary). */
export function formatRun(run: MoveRun): string {
  const w = run.writes;
  const phases = Object.entries(phaseDurations(run.view))
    .filter(([p]) => !['done', 'failed', 'cancelled'].includes(p))
    .map(([p, ms]) => `${p}:${ms}`)
    .join(',');
  return (
    `${run.direction.padEnd(36)} phase=${run.view.phase} move=${run.moveMs}ms [${phases}] pause=${run.view.pauseMs}ms rows=${run.view.rowsCopied}/${run.view.rowsTotal} ` +
    `acked=${w.acked} (${w.rate}/s; c${w.ackedByOp.create} u${w.ackedByOp.update} d${w.ackedByOp.delete} i${w.ackedByOp.invoice} t${w.ackedByOp.task}) ` +
    `maxWriteMs=${w.maxLatencyMs} writeErrors=${w.errors.length} reads=${w.reads} readFailures=${w.readFailures.length} stale=${w.staleReads.length} ` +
    `neighbours=${run.traffic.requests} neighbourErrors=${run.traffic.errors.length}`
  );
}

/**
 * What every successful move under load must show: done with equal verification checks; the new
 * home equals the writer's log; no write, read or neighbour request failed; no read saw data older
 * than an acknowledged write; the control plane shows the target; the tenant's login and its
 * already-issued token still work; the cutover pause was measured.
 */
export async function expectCleanMove(t: TestApp, run: MoveRun, writer: TenantWriter, tenant: OnboardedTenant, target: MoveTarget): Promise<TargetComparison> {
  expect({ phase: run.view.phase, error: run.view.error }).toEqual({ phase: 'done', error: null });
  expect(run.view.toTier).toBe(target.toTier);
  if (target.toPoolId) expect(run.view.toPoolId).toBe(target.toPoolId);
  expect(checkMismatches(run.view)).toEqual([]);
  expect(run.view.checks.map((c) => c.table)).toEqual(expect.arrayContaining(['projects', 'tasks', 'invoices']));
  expect(typeof run.view.pauseMs).toBe('number');

  expect(run.writes.errors).toEqual([]);
  expect(run.writes.readFailures).toEqual([]);
  expect(run.writes.staleReads).toEqual([]);
  expect(run.writes.acked).toBeGreaterThan(0);
  expect(run.writes.reads).toBeGreaterThan(0);
  expect(run.traffic.errors).toEqual([]);

  const comparison = await expectTargetMatchesLog(t, writer);
  expect(comparison.home).toMatchObject({ tier: target.toTier, poolId: run.view.toPoolId });

  const record = await callApi(t, 'GET', `/admin/tenants/${tenant.id}`, { headers: admin(t) });
  expect({ status: record.status, tier: record.body?.tier, poolId: record.body?.poolId, state: record.body?.status }).toEqual({
    status: 200,
    tier: target.toTier,
    poolId: run.view.toPoolId,
    state: 'active',
  });
  const withOldToken = await callApi(t, 'GET', '/projects?limit=1', { headers: tenantHeaders(tenant) });
  expect(withOldToken.status).toBe(200);
  const login = await callApi(t, 'POST', '/auth/login', { headers: { 'X-Tenant': tenant.slug }, body: { email: tenant.email, password: tenant.password } });
  expect(login.status).toBe(200);
  const withNewToken = await callApi(t, 'GET', '/projects?limit=1', { headers: tenantHeaders({ slug: tenant.slug, token: login.body.access_token }) });
  expect(withNewToken.status).toBe(200);
  return comparison;
}
