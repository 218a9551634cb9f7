import { Global, Module, type DynamicModule } from '@nestjs/common';
import { BullModule } from '@nestjs/bullmq';
import { DiscoveryModule } from '@nestjs/core';
import type { QueueOptions } from 'bullmq';
import { openRedisConnection, RedisModule, RedisMonitor } from '#strata/cache';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { JOBS_OPTIONS, resolveJobsOptions, type JobsModuleOptions, type ResolvedJobsOptions } from './jobs.options';
import { JOBS_REDIS, TenantBacklog } from './tenant-backlog.counter';
import { TenantJobProducer } from './tenant-job.producer';
import { TenantJobRunner } from './tenant-job.runner';
import { SystemTenantRunner } from './system-tenant.scope';
import { QueueDepthPublisher } from './queue-depth.publisher';
import { TenantQueuedJobs } from './tenant-queued.jobs';
import { jobsConnectionName, QueueConnections } from './queue-connections.watcher';

/**
 * BullMQ with tenant envelopes. forRoot() once per app (API and worker alike): the shared BullMQ
 * connection and prefix, the producer, the runner behind TenantWorkerHost and the system tenant.
 * registerQueue() in whichever module produces to or processes a queue. Needs STRATA_CONFIG, CLS,
 * the control plane and TenancyModule in the application. With ObservabilityModule in the app, every
 * registered queue's depth is published on /metrics (QueueDepthPublisher).
 */
@Global()
@Module({})
export class JobsModule {
  static forRoot(options: JobsModuleOptions = {}): DynamicModule {
    return {
      module: JobsModule,
      imports: [
        DiscoveryModule,
        // RedisMonitor: every connection of BullMQ and of this module reports its outages there.
        RedisModule,
        BullModule.forRootAsync({
          inject: [STRATA_CONFIG],
          useFactory: (config: StrataConfig): QueueOptions => {
            const { connection, prefix } = resolveJobsOptions(options, config.redisUrl);
            // ioredis and BullMQ type retryStrategy slightly differently; the object is the same.
            return { connection: connection as QueueOptions['connection'], prefix };
          },
        }),
      ],
      providers: [
        { provide: JOBS_OPTIONS, inject: [STRATA_CONFIG], useFactory: (c: StrataConfig) => resolveJobsOptions(options, c.redisUrl) },
        {
          provide: JOBS_REDIS,
          inject: [JOBS_OPTIONS, STRATA_CONFIG, RedisMonitor],
          // Its own connection for the fairness counters: BullMQ's clients are behind its backend
          // abstraction. A command connection: it fails fast while Redis is down (the enqueue path).
          useFactory: (o: ResolvedJobsOptions, c: StrataConfig, monitor: RedisMonitor) =>
            openRedisConnection(o.connection, { connectionName: jobsConnectionName(o.prefix), commandTimeoutMs: c.redisCommandTimeoutMs }, monitor),
        },
        TenantBacklog,
        TenantJobProducer,
        TenantJobRunner,
        SystemTenantRunner,
        QueueDepthPublisher,
        QueueConnections,
        TenantQueuedJobs,
      ],
      exports: [JOBS_OPTIONS, JOBS_REDIS, TenantBacklog, TenantJobProducer, TenantJobRunner, SystemTenantRunner, QueueConnections, TenantQueuedJobs],
    };
  }

  /**
   * Registers queues by name; they inherit forRoot()'s connection and prefix, and their depth is
   * published as `strata_queue_depth{queue}` in apps with ObservabilityModule.
   */
  static registerQueue(...names: string[]): DynamicModule {
    return BullModule.registerQueue(...names.map((name) => ({ name })));
  }
}
