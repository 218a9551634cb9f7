/**
 * Plan metering bench (libs/platform/plans): what a quota reservation costs N concurrent creates
 * of ONE pool tenant, side by side in one run on a throw-away database of BENCH_DATABASE_URL's server.
 *
 *   npm run bench:metering -- [--clients 16] [--per-client 200] [--rounds 3] [--think-ms 0]
 *
 * A "create" is the shape of a domain create's unit of work: BEGIN with the tenant's setup, the row's
 * INSERT, a listener's INSERT (a task of the project, like an outbox row), COMMIT. Variants:
 *   none            — no reservation (the ceiling);
 *   hot-row         — the old design: one conditional upsert on the counter's one row, where the
 *                     domain calls reserve(), first in the unit; its row lock is held to the end;
 *   one row, last   — the same statement run last, just before COMMIT: the lock is held for the commit;
 *   new             — PlanLimits now (reserveUsage, run just before COMMIT by beforeCommit): the
 *                     home's usage_reserve — unlimited, one of 16 shard rows; with a limit, one
 *                     shard's allowance (escrow), the counter's and all shards' locks only to re-grant.
 * each with a limit (never reached: every create passes) and with an unlimited (null) quota.
 * `--think-ms` waits that long between the unit's statements, standing in for the app's own time
 * between them under load (event-loop queueing of 32 HTTP requests on 2 cores).
 * Rounds interleave the variants so drift of the shared machine hits them alike; ratios are to `none`.
 */
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import type { EntityManager } from 'typeorm';
import { SHARED_SCHEMA } from '#strata/migrator';
import { reserveUsage } from '../libs/platform/plans/usage.counters';
import { BenchDatabase } from './bench-database';

const TENANT = '00000000-0000-4000-8000-00000000be7c';
const SETUP = `BEGIN; SELECT set_config('search_path', '${SHARED_SCHEMA}', true), set_config('app.tenant_id', '${TENANT}', true)`;
const INSERT_PROJECT = `INSERT INTO projects (name) VALUES ('bench') RETURNING id`;
const INSERT_TASK = `INSERT INTO tasks (project_id, title) VALUES ($1, 'bench')`;

/** The old reservation statement (one row per counter), kept here to measure against. */
const OLD_RESERVE = `
  INSERT INTO usage_counters AS c (tenant_id, id, metric, used)
  SELECT $1::uuid, md5($2)::uuid, $2, $3::bigint WHERE $4::bigint IS NULL OR $3::bigint <= $4::bigint
  ON CONFLICT (tenant_id, id) DO UPDATE SET used = c.used + EXCLUDED.used
   WHERE $4::bigint IS NULL OR c.used + EXCLUDED.used <= $4::bigint
  RETURNING used`;

type Placement = 'none' | 'hot-row' | 'one-row-last' | 'new';
interface Variant {
  name: string;
  placement: Placement;
  limit: number | null;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

/** pg's Client as the one method usage.counters needs of an EntityManager. */
const managerOf = (c: Client) => ({ query: async (sql: string, params: unknown[]) => (await c.query(sql, params)).rows }) as unknown as EntityManager;

async function create(c: Client, v: Variant, thinkMs: number): Promise<void> {
  const em = managerOf(c);
  const reserve = async () => {
    // A counter per kind of quota, so the unlimited runs do not send the limited ones to the slow path (the marker).
    const counter = v.limit === null ? 'projects_unlimited' : 'projects';
    const ok = v.placement === 'new' ? await reserveUsage(em, TENANT, counter, 1, v.limit) : (await c.query(OLD_RESERVE, [TENANT, counter, 1, v.limit])).rows.length > 0;
    if (!ok) throw new Error('the bench limit was reached: raise it');
  };
  await c.query(SETUP);
  try {
    if (v.placement === 'hot-row') await reserve();
    await sleep(thinkMs);
    const { rows } = await c.query<{ id: string }>(INSERT_PROJECT);
    await sleep(thinkMs);
    await c.query(INSERT_TASK, [rows[0].id]);
    await sleep(thinkMs);
    if (v.placement === 'one-row-last' || v.placement === 'new') await reserve();
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  }
}

async function run(clients: Client[], v: Variant, perClient: number, thinkMs: number): Promise<{ ms: number[]; wallMs: number }> {
  const ms: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < perClient; i++) {
        const s = performance.now();
        await create(c, v, thinkMs);
        ms.push(performance.now() - s);
      }
    }),
  );
  return { ms, wallMs: performance.now() - t0 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      clients: { type: 'string', default: '16' },
      'per-client': { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
      'think-ms': { type: 'string', default: '0' },
    },
  });
  const nClients = Number(values.clients);
  const perClient = Number(values['per-client']);
  const rounds = Number(values.rounds);
  const thinkMs = Number(values['think-ms']);
  const db = new BenchDatabase();
  process.on('SIGINT', () => void db.drop().finally(() => process.exit(130)));
  await db.create();
  const clients: Client[] = [];
  try {
    for (let i = 0; i < nClients; i++) {
      const c = new Client({ connectionString: db.ownerUrl, application_name: 'strata-bench-metering' });
      await c.connect();
      clients.push(c);
    }
    const settings = await db.settings(['synchronous_commit', 'fsync']);
    console.log(`metering: ${nClients} concurrent creates of one pool tenant, ${perClient} each, ${rounds} rounds, think ${thinkMs} ms; server ${await db.serverVersion()} ${JSON.stringify(settings)}`);
    const limited = 1_000_000_000;
    const variants: Variant[] = [
      { name: 'none', placement: 'none', limit: null },
      { name: 'hot-row, limit', placement: 'hot-row', limit: limited },
      { name: 'one row last, limit', placement: 'one-row-last', limit: limited },
      { name: 'new, limit', placement: 'new', limit: limited },
      { name: 'hot-row, unlimited', placement: 'hot-row', limit: null },
      { name: 'one row last, unlimited', placement: 'one-row-last', limit: null },
      { name: 'new, unlimited', placement: 'new', limit: null },
    ];
    // Warm-up: connections, plans, the counter row.
    for (const v of variants) await run(clients, v, 5, 0);
    const results = new Map(variants.map((v) => [v.name, { ms: [] as number[], wallMs: 0 }]));
    for (let r = 0; r < rounds; r++) {
      for (const v of variants) {
        const out = await run(clients, v, perClient, thinkMs);
        const acc = results.get(v.name)!;
        acc.ms.push(...out.ms);
        acc.wallMs += out.wallMs;
      }
    }
    const rate = (name: string) => results.get(name)!.ms.length / (results.get(name)!.wallMs / 1000);
    const base = rate('none');
    for (const v of variants) {
      const { ms } = results.get(v.name)!;
      const s = [...ms].sort((a, b) => a - b);
      console.log(
        `${v.name.padEnd(24)} ${rate(v.name).toFixed(0).padStart(6)} creates/s  p50 ${percentile(s, 50).toFixed(2).padStart(7)} ms  p99 ${percentile(s, 99).toFixed(2).padStart(7)} ms  ${(rate(v.name) / base).toFixed(2)}x of none`,
      );
    }
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await db.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
