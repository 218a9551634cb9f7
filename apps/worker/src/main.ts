import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadStrataConfig } from '#strata/common';
import { WorkerModule } from './worker.module';

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

async function main(): Promise<void> {
  const logger = new Logger('StrataWorker');
  useEmbeddedDefaults(logger);
  const config = loadStrataConfig(process.env);
  // JOBS_PREFIX (default `strata`) namespaces every BullMQ key, so environments can share a Redis.
  // Migrations and RLS guardrails belong to the API's startup and the migrate CLI, not here.
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, { jobs: { prefix: process.env.JOBS_PREFIX || undefined } }), { logger: ['log', 'error', 'warn', 'fatal'] });
  app.enableShutdownHooks();
  logger.log(`worker running (Redis ${config.redisUrl ?? 'redis://127.0.0.1:6379'})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
