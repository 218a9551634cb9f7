import 'reflect-metadata';
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

async function main(): Promise<void> {
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
