// First: sizes libuv's thread pool before anything uses it.
import './threadpool.setup';
import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadStrataConfig } from '#strata/common';
import { startTracing, type StopTracing, StrataLogger } from '#strata/observability';
import { WorkerModule } from './worker.module';
import { lowerCpuPriority, workerNiceFrom } from './worker.priority';

/**
 * Dev convenience: with DATABASE_URL unset, join the embedded PostgreSQL that `npm start` runs
 * (its secrets are in .data/dev-secrets.json). The worker never starts a database of its own:
 * two processes must not own one data directory.
 */
function useEmbeddedDefaults(logger: Logger): void {
  if (process.env.DATABASE_URL) return;
  const dir = resolve(process.env.STRATA_DATA_DIR ?? join(process.cwd(), '.data'));
  const file = join(dir, 'dev-secrets.json');
  if (!existsSync(file)) throw new Error('DATABASE_URL is unset and no embedded database was found: start the API first (npm start) or set DATABASE_URL');
  const s = JSON.parse(readFileSync(file, 'utf8')) as { ownerPassword: string; appPassword: string; controlPassword?: string; jwtSecret: string };
  const port = Number(process.env.EMBEDDED_PG_PORT ?? 54329);
  process.env.DATABASE_URL = `postgres://postgres:${encodeURIComponent(s.ownerPassword)}@127.0.0.1:${port}/strata`;
  process.env.DB_APP_PASSWORD ??= s.appPassword;
  process.env.DB_CONTROL_PASSWORD ??= s.controlPassword ?? s.appPassword;
  process.env.AUTH_JWT_SECRET ??= s.jwtSecret;
  logger.log(`DATABASE_URL is unset: using the embedded PostgreSQL on 127.0.0.1:${port} (started by npm start)`);
}

/**
 * Shutdown: close the app (BullMQ workers wait for their active jobs), then flush the spans those
 * jobs ended, then die of the signal as Nest's own shutdown hooks would. A shutdown hook would not
 * reliably flush last: Nest orders hooks by module distance, and a module added through `extra`
 * can run before BullMQ closes its workers. A second signal during shutdown kills the process at once.
 */
function shutDownOnSignals(app: INestApplicationContext, stopTracing: StopTracing, logger: Logger): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.log(`${signal}: closing (active jobs finish first)`);
      void app
        .close()
        .catch((err: unknown) => logger.error(`shutdown failed: ${String(err)}`))
        .finally(() => stopTracing().catch(() => undefined))
        .finally(() => process.kill(process.pid, signal));
    });
  }
}

async function main(): Promise<void> {
  // First: off (a no-op) unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or OTEL_TRACES_EXPORTER is set.
  const stopTracing = startTracing({ serviceName: 'strata-worker' });
  const logger = new Logger('StrataWorker');
  // Background work yields the CPU to the API's requests where both share a host (WORKER_NICE).
  const nice = workerNiceFrom(process.env);
  if (nice !== null) {
    const set = lowerCpuPriority(nice);
    if ('error' in set) logger.warn(`could not lower the worker's CPU priority to nice ${nice}: ${set.error}`);
    else logger.log(`CPU priority: nice ${set.nice} (WORKER_NICE)`);
  }
  useEmbeddedDefaults(logger);
  const config = loadStrataConfig(process.env);
  // JOBS_PREFIX (default `strata`) namespaces every BullMQ key, so environments can share a Redis.
  // Migrations and RLS guardrails belong to the API's startup and the migrate CLI, not here.
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), { bufferLogs: true });
  // Every line (jobs, cron, Nest's own) through pino, stamped with the tenant of its context.
  app.useLogger(app.get(StrataLogger));
  shutDownOnSignals(app, stopTracing, logger);
  logger.log(`worker running (Redis ${config.redisUrl ?? 'redis://127.0.0.1:6379'})`);
  // A parent that forked us over IPC (benches, a supervisor) learns when the executors poll.
  process.send?.({ type: 'ready' });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
