import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AUDIT_LOG, type AuditTrail } from '#strata/control-plane';

/** How long failures are summed before one entry per account and tenant is written. */
export const LOGIN_FAILURE_WINDOW_MS = 60_000;
/**
 * Distinct accounts counted per window. A spray over more addresses than this is summed into one
 * entry per tenant (`email: null, overflow: true`), so the log grows by a bounded number of rows
 * per minute whatever an attacker sends.
 */
export const LOGIN_FAILURE_MAX_KEYS = 5_000;

interface Bucket {
  tenantId: string | null;
  email: string | null;
  count: number;
  firstAt: Date;
  lastAt: Date;
}

/**
 * Failed logins, in bulk: counted in memory per (tenant, email) and written as one
 * `auth.login_failed` entry with a count per window. In memory rather than Redis because login must
 * keep working (and failures keep being counted) without REDIS_URL, and because each count only has
 * to reach the log, not be shared: with N instances an account under attack gets up to N entries a
 * minute instead of one, still bounded. What a crash loses is at most one window's counts; a clean
 * shutdown flushes. Rate limiting, which does need a shared count, is not this class's job.
 */
@Injectable()
export class LoginFailures implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(LoginFailures.name);
  private buckets = new Map<string, Bucket>();
  private windowStart = new Date();
  private timer: NodeJS.Timeout | undefined;

  constructor(@Inject(AUDIT_LOG) private readonly audit: AuditTrail) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), LOGIN_FAILURE_WINDOW_MS);
    this.timer.unref();
  }

  // Before every module's shutdown: the control plane's DataSource is still open to write the last window.
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** One failed attempt against `email` in `tenantId` (null: the tenant-less POST /auth/tenants). Synchronous: a login never waits for the log. */
  note(tenantId: string | null, rawEmail: string): void {
    const now = new Date();
    let email: string | null = rawEmail.toLowerCase().slice(0, 254);
    let key = `${tenantId ?? '-'}\u0000${email}`;
    if (!this.buckets.has(key) && this.buckets.size >= LOGIN_FAILURE_MAX_KEYS) {
      email = null;
      key = `${tenantId ?? '-'}\u0000*`;
    }
    const bucket = this.buckets.get(key);
    if (bucket) {
      bucket.count++;
      bucket.lastAt = now;
    } else {
      this.buckets.set(key, { tenantId, email, count: 1, firstAt: now, lastAt: now });
    }
  }

  /** Writes the window's entries and starts a new window; returns how many entries were written. */
  async flush(): Promise<number> {
    const buckets = [...this.buckets.values()];
    const windowStart = this.windowStart;
    const windowEnd = new Date();
    this.buckets = new Map();
    this.windowStart = windowEnd;
    let written = 0;
    for (const b of buckets) {
      try {
        await this.audit.record({
          action: 'auth.login_failed',
          tenantId: b.tenantId,
          actor: { type: 'anonymous' },
          requestId: null,
          details: {
            email: b.email,
            ...(b.email === null ? { overflow: true } : {}),
            count: b.count,
            firstAt: b.firstAt.toISOString(),
            lastAt: b.lastAt.toISOString(),
            windowStart: windowStart.toISOString(),
            windowEnd: windowEnd.toISOString(),
          },
        });
        written++;
      } catch (err) {
        this.logger.error(`${b.count} failed login(s) not written to the audit log: ${(err as Error).message}`);
      }
    }
    return written;
  }
}
