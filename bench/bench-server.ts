import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { Type } from '@nestjs/common';
import { loadStrataConfig } from '#strata/common';
import { createApp } from '../apps/api/src/app.factory';
import { BaselineController } from './baseline.controller';
import { TenantTxController } from './tenant-tx.controller';
import { serveAsApiChild } from './api-child.server';

/**
 * The API under test, in its own process so the load generator does not share its event loop.
 * Forked by http-tenancy.bench.ts with the bench database in the environment; reports its port
 * (and a platform-admin token for onboarding) over IPC, and closes the app when told to or when
 * the parent goes away.
 */
export interface BenchServerReady {
  type: 'ready';
  port: number;
  adminToken: string;
  pools: { dataPoolMax: number; siloPoolMax: number; siloMaxConnections: number; registryCacheTtlMs: number };
  /** PLACEMENT_FENCE as this process loaded it. */
  placementFence: boolean;
  /** RATE_LIMITS_ENABLED as this process loaded it, and whether its buckets sync through Redis. */
  rateLimitsEnabled: boolean;
  rateLimitsShared: boolean;
}

async function main(): Promise<void> {
  const config = loadStrataConfig(process.env);
  const controllers: Type[] = [BaselineController];
  // Diagnostic only (--breakdown): the tenant transaction without the auth guard.
  if (process.env.STRATA_BENCH_BREAKDOWN === '1') controllers.push(TenantTxController);
  const app = await createApp(config, { logger: false, extra: { controllers } });
  // Diagnostics (--cpu-prof): the parent brackets each measured run with start/stop, so a profile
  // holds one scenario's requests and nothing of setup or warm-up.
  let profiler: Session | undefined;
  const profile = async (msg: { action: 'start' | 'stop'; file?: string }) => {
    if (msg.action === 'start') {
      if (!profiler) {
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
      }
      await profiler.post('Profiler.start');
    } else if (profiler) {
      const { profile: taken } = await profiler.post('Profiler.stop');
      if (msg.file) writeFileSync(msg.file, JSON.stringify(taken));
    }
    process.send?.({ type: 'cpu-profile', action: msg.action });
  };
  const { port, adminToken } = await serveAsApiChild(app, 'bench-server', (msg) => {
    if (msg.type === 'cpu-profile' && (msg.action === 'start' || msg.action === 'stop')) {
      void profile({ action: msg.action, file: typeof msg.file === 'string' ? msg.file : undefined });
    }
  });

  const ready: BenchServerReady = {
    type: 'ready',
    port,
    adminToken,
    pools: {
      dataPoolMax: config.dataPoolMax,
      siloPoolMax: config.siloPoolMax,
      siloMaxConnections: config.siloMaxConnections,
      registryCacheTtlMs: config.registryCacheTtlMs,
    },
    placementFence: config.placementFence,
    rateLimitsEnabled: config.rateLimitsEnabled,
    rateLimitsShared: config.rateLimitsEnabled && config.redisUrl !== undefined,
  };
  process.send!(ready);
}

main().catch((err) => {
  console.error('bench-server failed to start:', err);
  process.exit(1);
});
