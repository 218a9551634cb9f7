import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { JobState, Queue } from 'bullmq';
import { TenantJobProducer } from '#strata/jobs';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { deliveryJob } from './webhook.outbox';
import { WEBHOOK_DELIVERY_QUEUE, WEBHOOKS_OPTIONS, type WebhooksOptions } from './webhooks.options';

/** What one tenant's relay run did: its job's return value. */
export interface WebhookRelayResult {
  tenantId: string;
  /** `pending` rows older than the threshold the query returned (at most the batch size). */
  stale: number;
  /** Enqueued again: their job was gone, or only a finished one (completed/failed) was left. */
  enqueued: number;
  /** Left alone: their job is still waiting, prioritized, delayed (backoff) or active. */
  inFlight: number;
  /** The batch was full: older-than-threshold rows may remain for the next run. */
  more: boolean;
}

/** What the relay job carries besides its tenant envelope: nothing (the tenant is the envelope's). */
export type WebhookRelayPayload = Record<string, never>;

/** Job states meaning "a job for this delivery is still coming": the relay adds nothing. */
const IN_FLIGHT: ReadonlySet<JobState | 'unknown'> = new Set<JobState | 'unknown'>(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children']);

/**
 * The outbox relay, for the tenant in context: finds `pending` deliveries older than
 * WEBHOOK_RELAY_AFTER_MS whose after-commit enqueue never happened (Redis down at commit, a crash
 * between COMMIT and enqueue, a job removed from Redis) and enqueues them again with the same job
 * as the outbox (jobId = delivery id).
 *
 * BullMQ ignores an add whose jobId still has a job hash, whatever its state — completed and failed
 * jobs included (kept 24 h / 7 d). So the relay looks at each row's job first: in flight → nothing
 * to do; no job → add; finished job but the row still `pending` (its last attempt died before
 * recording, or it was failed unrun because the tenant was suspended) → remove that stale job,
 * then add, otherwise the add would be a silent no-op until Redis expired the old job. Looking
 * first also keeps TenantJobProducer's per-tenant backlog counter honest: it counts every add,
 * including one BullMQ then ignores.
 *
 * Never a second send of a delivered row: the processor re-reads the row and sends nothing unless
 * it is still `pending` (a row delivered between this query and the add costs one no-op job).
 */
@Injectable()
export class WebhookOutboxRelay {
  private readonly logger = new Logger('WebhookOutboxRelay');

  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly producer: TenantJobProducer,
    @InjectQueue(WEBHOOK_DELIVERY_QUEUE) private readonly queue: Queue,
    @Inject(WEBHOOKS_OPTIONS) private readonly options: WebhooksOptions,
  ) {}

  async relay(): Promise<WebhookRelayResult> {
    const tenant = this.context.require('relaying webhook deliveries').tenant;
    const { relayAfterMs, relayBatchSize } = this.options;
    const rows = await this.connections.read(() => this.deliveries.findPendingOlderThan(relayAfterMs, relayBatchSize));
    const result: WebhookRelayResult = { tenantId: tenant.id, stale: rows.length, enqueued: 0, inFlight: 0, more: rows.length >= relayBatchSize };
    if (rows.length === 0) {
      // Every tenant, every few minutes: the common case stays out of the log.
      this.logger.debug(`tenant ${tenant.slug}: no pending delivery older than ${relayAfterMs} ms`);
      return result;
    }

    // Issued together on BullMQ's connection (pipelined), not one round trip after another.
    const states = await Promise.all(rows.map((r) => this.queue.getJobState(r.id)));
    const toSend: typeof rows = [];
    await Promise.all(
      rows.map(async (row, i) => {
        const state = states[i];
        if (IN_FLIGHT.has(state)) {
          result.inFlight++;
          return;
        }
        // completed/failed: a finished job whose row is still pending. remove() answers 0 when the
        // job is locked, i.e. something (another relay) just made it active again.
        if (state !== 'unknown' && (await this.queue.remove(row.id)) === 0) {
          result.inFlight++;
          return;
        }
        toSend.push(row);
      }),
    );
    if (toSend.length > 0) {
      await this.producer.addBulk(
        WEBHOOK_DELIVERY_QUEUE,
        toSend.map((r) => deliveryJob(r, this.options)),
      );
    }
    result.enqueued = toSend.length;
    this.logger.log(
      `tenant ${tenant.slug}: ${rows.length} pending deliver${rows.length === 1 ? 'y' : 'ies'} older than ${relayAfterMs} ms, ` +
        `re-enqueued ${result.enqueued}, ${result.inFlight} still in flight${result.more ? ' (batch full: more next run)' : ''}`,
    );
    return result;
  }
}
