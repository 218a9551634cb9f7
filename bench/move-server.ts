import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { loadStrataConfig } from '#strata/common';
import { JwtService } from '#strata/auth';
import { createApp } from '../apps/api/src/app.factory';

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
  if (!process.send) throw new Error('move-server must be forked with an IPC channel (run move.bench.js)');
  const config = loadStrataConfig(process.env);
  const app = await createApp(config, { logger: false });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const adminToken = await app.get(JwtService).signPlatformToken('bench-operator', 6 * 3600);

  let closing: Promise<void> | undefined;
  const shutdown = (code: number) => {
    closing ??= app
      .close()
      .catch((err) => console.error('move-server: close failed', err))
      .finally(() => process.exit(code));
    return closing;
  };
  process.on('message', (msg: { type?: string }) => {
    if (msg?.type === 'shutdown') void shutdown(0);
  });
  // The parent died or dropped the channel: never linger holding connections to a database it will drop.
  process.on('disconnect', () => void shutdown(0));

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
  process.send(ready);
}

main().catch((err) => {
  console.error('move-server failed to start:', err);
  process.exit(1);
});
