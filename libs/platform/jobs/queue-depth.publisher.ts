import { Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Queue } from 'bullmq';
import { MetricsService } from '#strata/observability';
import { QueueConnections } from './queue-connections.watcher';

/**
 * Publishes `strata_queue_depth{queue}` for every BullMQ queue registered in the app (by
 * JobsModule.registerQueue or BullModule.registerQueue directly), when the app has
 * ObservabilityModule; in an app without it (the worker today) it does nothing.
 *
 * Depth is BullMQ's `Queue.count()`: jobs waiting to be processed (waiting, prioritized — every
 * tenant job, since the producer sets priorities — delayed, waiting-children). Read from Redis on
 * each scrape, so every process registering a queue reports the same number: aggregate with
 * max(), not sum(), across replicas. While Redis is down a queue is left out of the scrape at once,
 * and a probe Redis does not answer within REDIS_COMMAND_TIMEOUT_MS is given up (QueueConnections).
 */
@Injectable()
export class QueueDepthPublisher implements OnApplicationBootstrap, OnModuleDestroy {
  /** The queue names published, in discovery order. */
  readonly queues: string[] = [];
  private readonly unregister: Array<() => void> = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly connections: QueueConnections,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.metrics) return;
    for (const wrapper of this.discovery.getProviders()) {
      const queue: unknown = wrapper.instance;
      if (!(queue instanceof Queue) || this.queues.includes(queue.name)) continue;
      this.queues.push(queue.name);
      this.unregister.push(this.metrics.registerQueueDepth(queue.name, () => this.connections.call(queue.name, () => queue.count())));
    }
  }

  onModuleDestroy(): void {
    for (const off of this.unregister.splice(0)) off();
    this.queues.length = 0;
  }
}
