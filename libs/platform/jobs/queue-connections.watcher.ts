import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { WorkerHost } from '@nestjs/bullmq';
import { Queue, Worker } from 'bullmq';
import { isRedisUnavailableError, RedisMonitor } from '#strata/cache';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { JobsUnavailableError } from './jobs.errors';
import { JOBS_OPTIONS, type ResolvedJobsOptions } from './jobs.options';

/** Connection names in logs and readiness: a queue's (producer side), a worker's, JobsModule's own. */
export const queueConnectionName = (queue: string) => `bullmq:${queue}`;
export const workerConnectionName = (queue: string) => `bullmq-worker:${queue}`;
export const jobsConnectionName = (prefix: string) => `${prefix}:jobs`;
/** A bulk add costs Redis time in proportion to its jobs: its bound is one REDIS_COMMAND_TIMEOUT_MS per this many. */
export const JOBS_PER_TIMEOUT = 500;

/**
 * BullMQ's connections (every registered queue's, every worker's) reported to the RedisMonitor,
 * and the bound on every queue call made on a request path.
 *
 * BullMQ opens its ioredis clients itself, so they are watched through the Queue/Worker: its
 * 'error' event (each failed reconnect attempt, from any of its connections) and its backend's
 * 'ready' and 'close'. The 'error' listener is also what stops BullMQ from printing every failed
 * reconnect attempt to stderr (an EventEmitter error without a listener).
 *
 * Their options are not touched: a worker must keep waiting for Redis (offline queue, unlimited
 * retries) so that a job finishing during an outage is recorded when Redis is back, and @nestjs/bullmq
 * builds a queue's workers from the queue's own options. Request paths are bounded here instead:
 * see call().
 */
@Injectable()
export class QueueConnections implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger('Jobs');
  private readonly watched = new WeakSet<object>();
  private readonly timeoutMs: number;
  private readonly jobsConnection: string;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly monitor: RedisMonitor,
    @Inject(STRATA_CONFIG) config: StrataConfig,
    @Inject(JOBS_OPTIONS) options: ResolvedJobsOptions,
  ) {
    this.timeoutMs = config.redisCommandTimeoutMs;
    this.jobsConnection = jobsConnectionName(options.prefix);
  }

  // Queues exist once providers are built; workers once @nestjs/bullmq's explorer ran (its own
  // onModuleInit), so both hooks look, and each Queue/Worker is watched once.
  onModuleInit(): void {
    this.watchAll();
  }

  onApplicationBootstrap(): void {
    this.watchAll();
  }

  /**
   * Runs one call to a queue's Redis on a request path. While the queue's connection (or the
   * jobs connection) is known to be down it fails at once; otherwise it gives up after
   * REDIS_COMMAND_TIMEOUT_MS (per started JOBS_PER_TIMEOUT `jobs`: adding 10,000 jobs in one bulk
   * takes Redis about a second). Either way, and for any "could not reach Redis" error, it throws
   * JobsUnavailableError (503, Retry-After). A call given up on may still reach Redis later, when
   * the server was only slow: BullMQ's queue connection keeps its offline queue (see above).
   */
  async call<T>(queue: string, fn: () => Promise<T>, jobs = 1): Promise<T> {
    const down = this.monitor.states().find((s) => s.status === 'down' && (s.name === queueConnectionName(queue) || s.name === this.jobsConnection));
    if (down) throw new JobsUnavailableError(`${down.name}: ${down.reason ?? 'down'}`);
    const ms = this.timeoutMs * Math.max(1, Math.ceil(jobs / JOBS_PER_TIMEOUT));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new JobsUnavailableError(`no answer from Redis within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([fn(), deadline]);
    } catch (err) {
      if (isRedisUnavailableError(err)) throw new JobsUnavailableError((err as Error).message);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private watchAll(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (instance instanceof Queue) this.watch(instance, queueConnectionName(instance.name));
      else if (instance instanceof WorkerHost) {
        const worker = workerOf(instance);
        if (worker) this.watch(worker, workerConnectionName(worker.name));
      }
    }
  }

  private watch(target: Queue | Worker, name: string): void {
    if (this.watched.has(target)) return;
    this.watched.add(target);
    const tracker = this.monitor.track(name);
    const onError = (err: Error) => {
      // During an outage every error is its echo; otherwise only "cannot reach Redis" starts one.
      if (tracker.down || isRedisUnavailableError(err)) tracker.failed(err);
      else this.logger.warn(`${name}: ${err.message}`);
    };
    // Queue and Worker type their listener maps separately; 'error' takes an Error in both.
    (target as Queue).on('error', onError);
    const backend = target.getBackend();
    backend.on('ready', () => tracker.ready());
    backend.on('close', () => tracker.lost());
    target.waitUntilReady().then(
      () => tracker.readyBefore(),
      () => undefined,
    );
  }
}

function workerOf(host: WorkerHost): Worker | undefined {
  try {
    return host.worker;
  } catch {
    // Not registered (yet): the explorer has not run, or the host is not a processor of this app.
    return undefined;
  }
}
