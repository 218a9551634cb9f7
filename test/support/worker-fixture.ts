import { randomBytes } from 'node:crypto';
import type { DynamicModule, Provider } from '@nestjs/common';
import { getQueueToken } from '@nestjs/bullmq';
import { Test, type TestingModule } from '@nestjs/testing';
import type { Queue } from 'bullmq';
import { ClsModule } from 'nestjs-cls';
import { StrataConfigModule, type StrataConfig } from '#strata/common';
import { ControlPlaneModule } from '#strata/control-plane';
import { JobsModule } from '#strata/jobs';
import { TenancyModule } from '#strata/tenancy/platform';
import { MigratorModule } from '#strata/migrator';
import { StrataLogger } from '#strata/observability';
import { WorkerModule } from '../../apps/worker/src/worker.module';
import { dropRedisPrefix } from './redis-prefix';

export interface TestWorkerOptions {
  /**
   * BullMQ key prefix. Default: a fresh `strata-test-…`, dropped whole from Redis by close(). A
   * prefix you pass is shared (the API's: JOBS_PREFIX, per test run), so close() drops only `queues`' keys,
   * and it needs `jobsOnly`: the full worker would consume other processes' real queues there.
   */
  prefix?: string;
  /**
   * `prefix` is this test's own (e.g. the JOBS_PREFIX it gave the API it started, so the worker
   * consumes that API's jobs): the full worker may run on it, and close() drops it whole.
   */
  ownsPrefix?: boolean;
  /**
   * Only the jobs stack (config, CLS, control plane, tenancy, JobsModule) and the test's queues and
   * processors, without WorkerModule's own processors and domain modules. Default false.
   */
  jobsOnly?: boolean;
  /** The test's own queues, registered besides the worker's (JobsModule.registerQueue). */
  queues?: string[];
  /** The test's processors and helpers. */
  providers?: Provider[];
  /** Register the @Cron schedules; default false (tests call the sweep directly). */
  schedule?: boolean;
}

export interface TestWorker {
  /** The initialised worker module: BullMQ workers are consuming. */
  module: TestingModule;
  prefix: string;
  queue(name: string): Queue;
  /** Shuts the worker down and deletes the Redis keys it owns. */
  close(): Promise<void>;
}

/**
 * The real worker (apps/worker WorkerModule: CLS, control plane, tenancy, domain modules, jobs)
 * on `config`'s database and Redis, plus the test's queues and processors.
 */
export async function startTestWorker(config: StrataConfig, opts: TestWorkerOptions = {}): Promise<TestWorker> {
  const ownPrefix = opts.prefix === undefined || opts.ownsPrefix === true;
  if (!ownPrefix && !opts.jobsOnly) throw new Error('startTestWorker: a shared prefix needs jobsOnly (the full worker would consume real queues)');
  const prefix = opts.prefix ?? `strata-test-${randomBytes(4).toString('hex')}`;
  const queues = opts.queues ?? [];
  const cleanup = async () => {
    if (ownPrefix) await dropRedisPrefix(config.redisUrl, prefix);
    else for (const q of queues) await dropRedisPrefix(config.redisUrl, `${prefix}:${q}`);
  };
  let module: TestingModule | undefined;
  try {
    const own: DynamicModule[] = queues.length ? [JobsModule.registerQueue(...queues)] : [];
    module = await Test.createTestingModule(
      opts.jobsOnly
        ? {
            imports: [StrataConfigModule.forRoot(config), ClsModule.forRoot({ global: true }), ControlPlaneModule, MigratorModule, TenancyModule, JobsModule.forRoot({ prefix }), ...own],
            providers: opts.providers ?? [],
          }
        : {
            imports: [
              WorkerModule.forRoot(config, { jobs: { prefix }, schedule: opts.schedule ?? false, extra: { imports: own, providers: opts.providers ?? [] } }),
            ],
          },
    ).compile();
    // As apps/worker/src/main.ts does: Nest's Logger (jobs, cron) writes through pino.
    if (!opts.jobsOnly) module.useLogger(module.get(StrataLogger));
    await module.init();
  } catch (err) {
    await module?.close().catch(() => undefined);
    await cleanup();
    throw err;
  }
  const mod = module;
  return {
    module: mod,
    prefix,
    queue: (name) => mod.get<Queue>(getQueueToken(name)),
    async close() {
      try {
        await mod.close();
      } finally {
        await cleanup();
      }
    },
  };
}
