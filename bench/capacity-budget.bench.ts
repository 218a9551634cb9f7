/**
 * What the per-tenant concurrency budget costs a request, in process, side by side in one run:
 *   - baseline: the request's own bookkeeping without a budget (a resolved promise per request);
 *   - fast path: the same, plus take/give of a tenant's slot below its limit (every request of a
 *     tenant under its budget);
 *   - queued: the same, with the tenant at its limit, so every request waits in the FIFO and is
 *     handed a slot (the worst case: a tenant flooding one instance).
 * Tenants are drawn from a fleet of 10,000 ids, so the Map holds what a busy instance would. Rounds
 * alternate the three and report ns per request and the ratio to baseline per round; the HTTP bench
 * (npm run bench) is where a request's whole cost (~700 µs of CPU here) sits beside it.
 *
 *   npm run bench:capacity -- [--requests 200000] [--rounds 5] [--quick]
 */
import { parseArgs } from 'node:util';
import { KeyedSlots } from '#strata/common';

const { values } = parseArgs({
  options: { requests: { type: 'string' }, rounds: { type: 'string' }, quick: { type: 'boolean', default: false } },
});
const quick = values.quick ?? false;
const REQUESTS = Number(values.requests ?? (quick ? 20_000 : 200_000));
const ROUNDS = Number(values.rounds ?? (quick ? 2 : 5));
const FLEET = 10_000;
const LIMIT = 8;
const tenants = Array.from({ length: FLEET }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);

/** `concurrency` requests in flight at once, each on a tenant of the fleet (or all on one: `flood`). */
async function run(kind: 'baseline' | 'fast' | 'queued'): Promise<number> {
  const slots = new KeyedSlots({ queueMax: 1_000_000, waitMs: 60_000 });
  const concurrency = 32;
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async (w: number) => {
    while (next < REQUESTS) {
      const n = next++;
      const tenant = kind === 'queued' ? tenants[0] : tenants[(n * 7919 + w) % FLEET];
      if (kind === 'baseline') {
        await Promise.resolve();
        continue;
      }
      const taken = slots.take(tenant, LIMIT);
      if (taken !== true) await taken;
      await Promise.resolve();
      slots.give(tenant);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const ns = Number(process.hrtime.bigint() - started) / REQUESTS;
  if (slots.size !== 0) throw new Error(`the budget kept ${slots.size} tenants after the run`);
  return ns;
}

async function main(): Promise<void> {
  const rows: Record<string, number[]> = { baseline: [], fast: [], queued: [] };
  const ratios: Record<string, number[]> = { fast: [], queued: [] };
  // One warm-up round, not reported.
  for (const k of ['baseline', 'fast', 'queued'] as const) await run(k);
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? (['queued', 'fast', 'baseline'] as const) : (['baseline', 'fast', 'queued'] as const);
    const got: Record<string, number> = {};
    for (const k of order) got[k] = await run(k);
    for (const k of Object.keys(got)) rows[k].push(got[k]);
    ratios.fast.push(got.fast / got.baseline);
    ratios.queued.push(got.queued / got.baseline);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`capacity budget, in process: ${REQUESTS} requests × ${ROUNDS} rounds, 32 in flight, fleet of ${FLEET} tenants, limit ${LIMIT}; Node ${process.version}\n`);
  console.log('| path | ns per request (median) | per round | × baseline (median) | extra ns over baseline |');
  console.log('|---|--:|---|--:|--:|');
  const base = median(rows.baseline);
  for (const k of ['baseline', 'fast', 'queued'] as const) {
    const m = median(rows[k]);
    const ratio = k === 'baseline' ? 1 : median(ratios[k]);
    console.log(`| ${k} | ${m.toFixed(0)} | ${rows[k].map((x) => x.toFixed(0)).join(', ')} | ${ratio.toFixed(2)} | ${(m - base).toFixed(0)} |`);
  }
  console.log(`\nAgainst ~700 µs of CPU per HTTP request (npm run bench), the extra ns above are the budget's share of a request.`);
}

void main();
