import 'reflect-metadata';
import { appendFileSync } from 'node:fs';
import { loadStrataConfig } from '#strata/common';
import { createApp } from '../apps/api/src/app.factory';
import { serveAsApiChild } from './api-child.server';

/**
 * The API under test for `npm run bench:move`: the app exactly as `npm start` builds it (no bench
 * controllers), in its own process so the load generators do not share its event loop. Forked by
 * move.bench.ts with the bench database in the environment; reports its port and a platform-admin
 * token over IPC, and closes the app when told to or when the parent goes away.
 */
export interface MoveServerReady {
  type: 'ready';
  port: number;
  adminToken: string;
  settings: {
    dataPoolMax: number;
    siloPoolMax: number;
    placementFence: boolean;
    movesExecutor: boolean;
    moveSourceRetentionMs: number;
    moveCutoverLockTimeoutMs: number;
    registryCacheTtlMs: number;
  };
}

/**
 * With `--dump f` (BENCH_STALLS=f.stalls): a line per 5 ms tick that came more than 12 ms late —
 * the API's event loop was blocked (a GC, a synchronous build) — so a slow request can be told
 * apart from a slow database.
 */
function watchStalls(): void {
  if (!process.env.BENCH_STALLS) return;
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const late = now - last - 5;
    if (late > 12) appendFileSync(process.env.BENCH_STALLS!, `${Date.now()} ${late.toFixed(1)}\n`);
    last = now;
  }, 5).unref();
}

async function main(): Promise<void> {
  watchStalls();
  const config = loadStrataConfig(process.env);
  const app = await createApp(config, { logger: false });
  const { port, adminToken } = await serveAsApiChild(app, 'move-server');

  const ready: MoveServerReady = {
    type: 'ready',
    port,
    adminToken,
    settings: {
      dataPoolMax: config.dataPoolMax,
      siloPoolMax: config.siloPoolMax,
      placementFence: config.placementFence,
      movesExecutor: config.movesExecutor,
      moveSourceRetentionMs: config.moveSourceRetentionMs,
      moveCutoverLockTimeoutMs: config.moveCutoverLockTimeoutMs,
      registryCacheTtlMs: config.registryCacheTtlMs,
    },
  };
  process.send!(ready);
}

main().catch((err) => {
  console.error('move-server failed to start:', err);
  process.exit(1);
});
