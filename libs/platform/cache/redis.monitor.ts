import { AsyncResource } from 'node:async_hooks';
import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Redis } from 'ioredis';

/** `connecting`: not ready yet since it was made; `up`: ready; `down`: lost, or never reached. */
export type RedisLinkStatus = 'connecting' | 'up' | 'down';

/** One Redis connection of this process, as readiness reports it. */
export interface RedisConnectionState {
  /** Its name in logs and readiness: `strata`, `strata-registry-sub`, `<prefix>:jobs`, `bullmq:<queue>` … */
  name: string;
  status: RedisLinkStatus;
  /** Since when it has this status. */
  since: Date;
  /** Why it is down: its latest connection error (`connect ECONNREFUSED 127.0.0.1:6379`). */
  reason?: string;
}

/**
 * What a watched connection reports. Adapters translate their client's events into these calls:
 * watchRedisClient() for ioredis clients here, the jobs lib's watcher for BullMQ's queues and workers.
 */
export interface RedisConnectionTracker {
  readonly name: string;
  /** True while the connection is lost or was never reached: callers fail fast instead of waiting. */
  readonly down: boolean;
  /** The socket closed. The connection counts as down at once; the outage is logged when an error says why. */
  lost(reason?: string): void;
  /** A connection error: every failed reconnect attempt brings one. Only the first of an outage is logged. */
  failed(err: unknown): void;
  /** Connected and ready (again). Logs one line when it ends a logged outage. */
  ready(): void;
  /** Ready, known at attach time (a connection made before it was watched): never logs. */
  readyBefore(): void;
  /** Closed for good (quit, shutdown): no longer reported. */
  ended(): void;
}

const adapterLogger = new Logger('Redis');

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
// ioredis' own words for "no connection": offline queue off, closed client, commandTimeout, retries used up.
const UNAVAILABLE_MESSAGE = /Stream isn't writeable|Connection is closed|Command timed out|max retries per request|ECONNREFUSED|ECONNRESET|ETIMEDOUT/i;

/** True for errors that mean "Redis could not be reached", as opposed to a command Redis refused. */
export function isRedisUnavailableError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const { name, code, message: text } = err as { name?: unknown; code?: unknown; message?: unknown };
  return (
    name === 'MaxRetriesPerRequestError' ||
    (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) ||
    (typeof text === 'string' && UNAVAILABLE_MESSAGE.test(text))
  );
}
// Duck-typed: errors of node's core (ECONNREFUSED …) may come from another realm (jest's vm).
const message = (err: unknown): string => {
  const m = (err as { message?: unknown } | undefined)?.message;
  return (typeof m === 'string' ? m : String(err)) || 'connection error';
};

/**
 * Every Redis connection of the process and whether it is up. One warning per outage and
 * connection when Redis goes away and one info line when it is back, instead of a line (or an
 * `[ioredis] Unhandled error event` stack) per reconnect attempt; readiness reads the states.
 */
@Injectable()
export class RedisMonitor implements OnModuleDestroy {
  private readonly logger = new Logger('Redis');
  private readonly connections = new Map<string, RedisConnectionState & { logged: boolean }>();
  private stopped = false;

  /** Starts tracking a connection; a name already taken gets a `#n` suffix. */
  track(wanted: string): RedisConnectionTracker {
    let name = wanted;
    for (let n = 2; this.connections.has(name); n++) name = `${wanted}#${n}`;
    const state = { name, status: 'connecting' as RedisLinkStatus, since: new Date(), logged: false, reason: undefined as string | undefined };
    this.connections.set(name, state);
    // Client events run in the async context of whatever first used the client (a tenant's request,
    // say): its log lines would carry that request's tenant and id. They are written from the
    // context the connection was tracked in (startup) instead.
    const detached = new AsyncResource('RedisMonitor');
    const log = (write: () => void) => detached.runInAsyncScope(write);
    const live = () => !this.stopped && this.connections.get(name) === state;
    const goDown = (reason: string) => {
      if (state.status !== 'down') Object.assign(state, { status: 'down', since: new Date(), logged: false });
      state.reason = reason;
    };
    return {
      name,
      get down() {
        return state.status === 'down';
      },
      lost: (reason) => {
        // A close before the first ready is a failed attempt; its error (if any) reports it.
        if (live() && state.status === 'up') goDown(reason ?? 'connection closed');
      },
      failed: (err) => {
        if (!live()) return;
        goDown(message(err));
        if (state.logged) return;
        state.logged = true;
        log(() =>
          this.logger.warn(
            { event: 'redis.down', connection: name, reason: state.reason, since: state.since.toISOString() },
            `redis connection ${name} is down (${state.reason}); its commands fail fast until it is back`,
          ),
        );
      },
      ready: () => {
        if (!live() || state.status === 'up') return;
        const was = { ...state };
        Object.assign(state, { status: 'up', since: new Date(), logged: false, reason: undefined });
        const downMs = state.since.getTime() - was.since.getTime();
        if (was.status === 'down' && was.logged) {
          log(() => this.logger.log({ event: 'redis.up', connection: name, downMs }, `redis connection ${name} is back after ${downMs} ms`));
        } else if (was.status === 'down') {
          // Closed and reconnected before any attempt failed (a server-side close, a quick restart).
          log(() => this.logger.debug(`redis connection ${name} reconnected after ${downMs} ms`));
        }
      },
      readyBefore: () => {
        if (live() && state.status === 'connecting') Object.assign(state, { status: 'up', since: new Date() });
      },
      ended: () => {
        if (this.connections.get(name) === state) this.connections.delete(name);
      },
    };
  }

  /** The tracked connections, oldest first. */
  states(): RedisConnectionState[] {
    return [...this.connections.values()].map(({ name, status, since, reason }) => ({ name, status, since, ...(reason ? { reason } : {}) }));
  }

  /** True while the named connection is known to be down. */
  isDown(name: string): boolean {
    return this.connections.get(name)?.status === 'down';
  }

  /** Shutdown closes every connection on purpose: nothing after this is an outage. */
  onModuleDestroy(): void {
    this.stopped = true;
  }
}

export interface WatchRedisOptions {
  /**
   * While the connection is down, switch the client's offline queue off so commands fail at once
   * instead of waiting for a reconnect; it is switched back on when the client is ready. Off for
   * clients whose commands must survive an outage (BullMQ workers).
   */
  failFast?: boolean;
}

/**
 * Reports an ioredis client's connection to the monitor. Its 'error' listener is the one ioredis
 * needs so that it does not print every failed reconnect as an unhandled error event.
 */
export function watchRedisClient(monitor: RedisMonitor, client: Redis, name: string, opts: WatchRedisOptions = {}): RedisConnectionTracker {
  const tracker = monitor.track(name);
  const offlineQueue = client.options.enableOfflineQueue ?? true;
  const failFast = (on: boolean) => {
    // ioredis reads this option on every command: a command sent while the socket is gone is
    // refused at once ("Stream isn't writeable …") rather than queued until the next reconnect.
    if (opts.failFast) client.options.enableOfflineQueue = on ? false : offlineQueue;
  };
  client.on('ready', () => {
    failFast(false);
    tracker.ready();
  });
  // An error on a ready client (a reset socket) comes just before its close: the close reports it.
  let lastError: string | undefined;
  client.on('close', () => {
    if (!tracker.down && client.status !== 'end') failFast(true);
    tracker.lost(lastError);
    lastError = undefined;
  });
  client.on('error', (err: unknown) => {
    if (client.status === 'ready') {
      lastError = message(err);
      adapterLogger.debug(`redis connection ${tracker.name}: ${lastError}`);
      return;
    }
    failFast(true);
    tracker.failed(err);
  });
  client.on('end', () => tracker.ended());
  if (client.status === 'ready') tracker.readyBefore();
  return tracker;
}
