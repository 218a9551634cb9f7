// First: sizes libuv's thread pool before anything uses it.
import './threadpool.setup';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadStrataConfig } from '#strata/common';
import { startTracing, TracingShutdownModule } from '#strata/observability';
import { bootstrapDatabase, bootstrapOptionsFrom, checkFleetGuardrails, runFleet } from '#strata/migrator';
import { createApp } from './app.factory';
import { startEmbeddedPostgres } from './embedded-database';
import { DEMO_CORS_ORIGINS, demoBaseUrl, printDemoHelp, seedDemo } from './demo-seed';

async function main(): Promise<void> {
  // First: off (a no-op) unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or OTEL_TRACES_EXPORTER is set.
  const stopTracing = startTracing({ serviceName: 'strata-api' });
  const logger = new Logger('Strata');
  let embedded: { stop: () => Promise<void> } | undefined;
  if (!process.env.DATABASE_URL) {
    logger.log(`DATABASE_URL is unset: starting the embedded PostgreSQL under ${process.env.STRATA_DATA_DIR ?? '.data'}/pg`);
    embedded = await startEmbeddedPostgres();
    // The demo serves a local frontend dev server (Vite's default port) through CORS out of the box.
    process.env.CORS_ORIGINS ??= DEMO_CORS_ORIGINS;
    // Self-service signup is off unless asked for; the local demo shows it.
    process.env.SIGNUP_ENABLED ??= '1';
  }
  const config = loadStrataConfig(process.env);
  await bootstrapDatabase(bootstrapOptionsFrom(config));

  // Dev convenience (default with the embedded database): bring every tenant target up to this
  // release. In production run `npm run migrate -- up` (canary first) before rolling out.
  if (process.env.MIGRATE_ON_START === '1' || (embedded && process.env.MIGRATE_ON_START !== '0')) {
    const report = await runFleet({ ownerUrl: config.databaseUrl, appRole: config.appDbUser, mode: 'up' });
    if (!report.ok) logger.warn(`tenant migrations failed on ${report.results.filter((r) => r.status === 'failed').map((r) => r.target.key).join(', ')}`);
  }
  // RLS guardrails at startup: a tenant table without forced RLS, or an app role that can bypass
  // it, stops the API (RLS_GUARDRAILS=warn only logs).
  const violations = await checkFleetGuardrails({ url: config.databaseUrl, appRole: config.appDbUser });
  for (const v of violations) logger.error(`RLS guardrail: ${v.target}${v.table ? ` ${v.table}` : ''}: ${v.problem}`);
  if (violations.length && process.env.RLS_GUARDRAILS !== 'warn') {
    throw new Error(`${violations.length} RLS guardrail violation(s); fix them or set RLS_GUARDRAILS=warn`);
  }

  // Spans are flushed on shutdown, after Nest closed the HTTP server (every request span has ended).
  // On SIGTERM/SIGINT (Nest's shutdown hooks) and app.close(): flush traces, then stop the embedded
  // cluster, so a stopped API never leaves its PostgreSQL behind (a killed one is handled at the next start).
  const stopAll = async () => {
    await stopTracing();
    await embedded?.stop().catch((err: unknown) => console.error(`[embedded-postgres] stop failed: ${String(err)}`));
  };
  const app = await createApp(config, { extra: { imports: [TracingShutdownModule.forRoot(stopAll)] } });
  const seed = embedded ? process.env.STRATA_DEMO !== '0' : process.env.STRATA_DEMO === '1';
  // Initialised (lifecycle hooks run) and seeded before listening: the first request already finds
  // the demo tenants. listen() does not initialise twice.
  await app.init();
  if (seed) await seedDemo(app);
  // The embedded demo (generated secrets, demo users with a published password) is for this machine
  // only, so it listens on loopback; anything else listens on every interface (containers) unless
  // HOST says otherwise.
  await app.listen(config.port, config.host ?? (embedded ? '127.0.0.1' : '0.0.0.0'));
  const bound = app.getHttpServer().address();
  const where = typeof bound === 'object' && bound ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : String(bound);
  logger.log(`listening on http://${where}`);
  if (seed) {
    // Last, after the boot logs (a turn of the event loop lets the ones already under way out
    // first), so the ready-to-paste lines are the last thing on the screen.
    await new Promise((resolve) => setImmediate(resolve));
    await printDemoHelp(app, config, demoBaseUrl(bound));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
