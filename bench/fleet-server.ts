import 'reflect-metadata';
import { JwtService } from '#strata/auth';
import { loadStrataConfig, type StrataConfig } from '#strata/common';
import { JobsModule } from '#strata/jobs';
import { INVOICE_OVERDUE_QUEUE } from '../apps/worker/src/invoice-overdue.constants';
import { createApp } from '../apps/api/src/app.factory';
import { serveAsApiChild } from './api-child.server';
import { NeighboursController } from './neighbours.controller';

/**
 * The API under test for `npm run bench:fleet` and `bench:neighbours`: the app exactly as
 * `npm start` builds it, in its own process. Besides the ready message it answers two IPC requests
 * the parent cannot do from outside without a login per tenant (one scrypt each, 10k of them):
 *   - `{type: 'sign', id, claims: [{sub, tid, role}]}` → tenant tokens signed with the app's secret;
 *   - `{type: 'memory', id}` → `process.memoryUsage()` after a full GC (forked with --expose-gc).
 */
export interface FleetServerReady {
  type: 'ready';
  port: number;
  adminToken: string;
  pid: number;
  /** The capacity settings as this process loaded them (printed with the results). */
  settings: Record<string, unknown>;
}

const CAPACITY_SETTINGS = /pool|silo|registry|connection|budget|limit|capacity|metrics|timeout/i;

function capacitySettings(config: StrataConfig): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).filter(([k, v]) => CAPACITY_SETTINGS.test(k) && (typeof v === 'number' || typeof v === 'boolean')),
  );
}

async function main(): Promise<void> {
  const config = loadStrataConfig(process.env);
  // bench:neighbours mounts its noisy tenant's routes (slow statement, bulk enqueue); bench:fleet does not.
  const extra = process.env.STRATA_BENCH_NEIGHBOURS === '1' ? { controllers: [NeighboursController], imports: [JobsModule.registerQueue(INVOICE_OVERDUE_QUEUE)] } : undefined;
  const app = await createApp(config, { logger: false, extra });
  const jwt = app.get(JwtService);
  const { port, adminToken } = await serveAsApiChild(app, 'fleet-server', (msg) => {
    const id = msg.id;
    if (msg.type === 'sign' && Array.isArray(msg.claims)) {
      void Promise.all((msg.claims as { sub: string; tid: string; role: string }[]).map(async (c) => (await jwt.signTenantToken(c)).token)).then(
        (tokens) => process.send?.({ type: 'signed', id, tokens }),
      );
    } else if (msg.type === 'memory') {
      (globalThis as { gc?: () => void }).gc?.();
      process.send?.({ type: 'memory', id, memory: process.memoryUsage() });
    }
  });
  const ready: FleetServerReady = { type: 'ready', port, adminToken, pid: process.pid, settings: capacitySettings(config) };
  process.send!(ready);
}

main().catch((err) => {
  console.error('fleet-server failed to start:', err);
  process.exit(1);
});
