import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { readMoveHint, TenantMoveHints, TenantRegistry, type TenantChangePublisher, type TenantMoveHint } from '#strata/control-plane';
import { closeRedisClient, REDIS_CLIENT, type RedisClient } from './redis.client';
import { RedisMonitor, watchRedisClient, type RedisConnectionTracker } from './redis.monitor';

export const REGISTRY_INVALIDATION_OPTIONS = Symbol('REGISTRY_INVALIDATION_OPTIONS');
export const DEFAULT_REGISTRY_CHANNEL = 'strata:registry';
/** The subscriber connection's name in logs and readiness. */
export const REGISTRY_SUBSCRIBER_CONNECTION = 'strata-registry-sub';

export interface RegistryInvalidationOptions {
  /** Pub/sub channel; tests sharing one Redis use a unique one. */
  channel?: string;
  /** How long a publish may take before it is given up (logged); default 1000 ms. */
  publishTimeoutMs?: number;
}

/** What travels on the channel. Ids only: no tenant names on the wire or in logs. */
export type RegistryChangeMessage =
  | { kind: 'tenant'; tenantId: string; slug: string }
  | { kind: 'membership'; userId: string; tenantId: string }
  | { kind: 'all' };

const CHANNEL_RULE = /^[A-Za-z0-9:._-]{1,128}$/;

/**
 * Keeps every instance's TenantRegistry (an in-process LRU with a TTL) in step with admin changes:
 * a change is published on a Redis channel and each instance, the publisher included, drops what
 * it cached. Without REDIS_URL it degrades to local invalidation only, as before, and other
 * instances catch up when their TTL runs out.
 */
@Injectable()
export class TenantRegistryInvalidation implements TenantChangePublisher, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TenantRegistryInvalidation.name);
  private readonly channel: string;
  /** Move hints travel apart: an instance of an older release ignores them instead of clearing its registry. */
  private readonly hintChannel: string;
  private readonly publishTimeoutMs: number;
  private subscriber: Redis | undefined;
  private subscriberLink: RedisConnectionTracker | undefined;
  private subscribing: Promise<void> | undefined;
  private subscribed = false;
  private connectedBefore = false;
  private degraded = false;

  constructor(
    @Inject(REDIS_CLIENT) private readonly client: RedisClient,
    private readonly registry: TenantRegistry,
    private readonly monitor: RedisMonitor,
    private readonly hints: TenantMoveHints,
    @Inject(REGISTRY_INVALIDATION_OPTIONS) options: RegistryInvalidationOptions = {},
  ) {
    this.channel = options.channel ?? DEFAULT_REGISTRY_CHANNEL;
    if (!CHANNEL_RULE.test(this.channel)) throw new Error(`registry channel must match ${CHANNEL_RULE}`);
    this.hintChannel = `${this.channel}.moves`;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 1000;
  }

  /** True once this instance listens; tests wait for it before changing a tenant. */
  get listening(): boolean {
    return this.subscribed;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.client) {
      this.logger.log('REDIS_URL is unset: registry changes are invalidated in this instance only');
      return;
    }
    // A connection in subscriber mode can run no other command, hence its own. The offline queue
    // is named: the shared client's may be switched off by an outage at the moment it is copied.
    const sub = this.client.duplicate({ connectionName: REGISTRY_SUBSCRIBER_CONNECTION, enableOfflineQueue: true });
    this.subscriber = sub;
    // Its outages are logged once by the monitor, like every other connection's.
    this.subscriberLink = watchRedisClient(this.monitor, sub, REGISTRY_SUBSCRIBER_CONNECTION, { failFast: true });
    sub.on('message', (channel: string, raw: string) => {
      if (channel === this.channel) this.apply(raw);
      else if (channel === this.hintChannel) this.applyHint(raw);
    });
    sub.on('close', () => {
      // Messages published from now on are lost to this instance: what it caches meanwhile lives
      // only the fallback TTL, and what it cached before may already be stale by the time it would expire.
      if (!this.connectedBefore || this.degraded) return;
      this.degraded = true;
      this.registry.invalidateAll();
      this.registry.expireSooner(true);
    });
    sub.on('ready', () => {
      // ioredis resubscribes after a reconnect, but messages published during the gap are lost:
      // drop everything rather than serve a change we missed until the TTL.
      if (this.connectedBefore) this.registry.invalidateAll();
      this.registry.expireSooner(false);
      this.degraded = false;
      this.connectedBefore = true;
      if (!this.subscribed) void this.subscribe();
    });
    // Boot does not fail on a Redis outage: the registry TTL still bounds staleness, and the
    // ready handler subscribes once Redis is back.
    await this.subscribe();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.subscriber) await closeRedisClient(this.subscriber);
  }

  publishTenantChanged(tenant: { id: string; slug: string }): Promise<void> {
    this.registry.invalidateTenant(tenant);
    return this.publish({ kind: 'tenant', tenantId: tenant.id, slug: tenant.slug });
  }

  publishMembershipChanged(userId: string, tenantId: string): Promise<void> {
    this.registry.invalidateMembership(userId, tenantId);
    return this.publish({ kind: 'membership', userId, tenantId });
  }

  /** For changes that touch many tenants at once (a pool moved, a bulk migration). */
  publishAllChanged(): Promise<void> {
    this.registry.invalidateAll();
    return this.publish({ kind: 'all' });
  }

  publishTenantMoving(hint: TenantMoveHint): Promise<void> {
    this.hints.emit(hint);
    return this.publishOn(this.hintChannel, JSON.stringify(hint), 'move hint');
  }

  /** A hint that is not one is dropped: hints are never needed for correctness. */
  applyHint(raw: string): void {
    let hint: TenantMoveHint | null = null;
    try {
      hint = readMoveHint(JSON.parse(raw));
    } catch {
      hint = null;
    }
    if (hint) this.hints.emit(hint);
    else this.logger.debug(`unreadable move hint (${raw.length} bytes) dropped`);
  }

  /** Applies one message. Anything unreadable clears the whole registry: over-invalidating is safe. */
  apply(raw: string): void {
    let msg: Partial<Record<string, unknown>> | undefined;
    try {
      msg = JSON.parse(raw) as Partial<Record<string, unknown>>;
    } catch {
      msg = undefined;
    }
    if (msg?.kind === 'tenant' && typeof msg.tenantId === 'string' && typeof msg.slug === 'string') {
      this.registry.invalidateTenant({ id: msg.tenantId, slug: msg.slug });
    } else if (msg?.kind === 'membership' && typeof msg.userId === 'string' && typeof msg.tenantId === 'string') {
      this.registry.invalidateMembership(msg.userId, msg.tenantId);
    } else {
      if (msg?.kind !== 'all') this.logger.warn(`unreadable registry message (${raw.length} bytes): clearing the whole registry`);
      this.registry.invalidateAll();
    }
  }

  private subscribe(): Promise<void> {
    this.subscribing ??= (async () => {
      try {
        await this.subscriber!.subscribe(this.channel, this.hintChannel);
        this.subscribed = true;
      } catch (err) {
        // During an outage the monitor has said so once; the ready handler subscribes when it ends.
        const log = this.subscriberLink?.down ? 'debug' : 'error';
        this.logger[log](`could not subscribe to ${this.channel}; other instances' changes arrive only by TTL: ${(err as Error).message}`);
      } finally {
        this.subscribing = undefined;
      }
    })();
    return this.subscribing;
  }

  /** Never throws: the control-plane change is already committed; a lost publish costs one TTL. */
  private publish(msg: RegistryChangeMessage): Promise<void> {
    return this.publishOn(this.channel, JSON.stringify(msg), `registry change (${msg.kind})`);
  }

  private async publishOn(channel: string, payload: string, what: string): Promise<void> {
    if (!this.client) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.publishTimeoutMs} ms`)), this.publishTimeoutMs);
    });
    try {
      await Promise.race([this.client.publish(channel, payload), timeout]);
    } catch (err) {
      this.logger.error(`${what} not published; other instances see it after their TTL: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
