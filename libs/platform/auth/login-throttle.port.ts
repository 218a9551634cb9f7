import { createHash } from 'node:crypto';
import type { Request } from 'express';

/**
 * The anonymous routes' limits, as auth needs them: implemented by libs/platform/rate-limits
 * (LoginThrottle) and provided globally under LOGIN_THROTTLE. A port because rate-limits reads
 * plans, and plans use auth's route decorators: auth importing rate-limits would close a cycle.
 * Absent (an app without RateLimitsModule), the routes are not limited.
 */
export const LOGIN_THROTTLE = Symbol('LOGIN_THROTTLE');

export interface LoginThrottlePort {
  /** Before the password is checked; throws 429 rate_limited (Retry-After) when the address may not try now. */
  beforeAttempt(address: string, account: string): Promise<void>;
  failed(address: string, account: string): Promise<void>;
  succeeded(address: string, account: string): Promise<void>;
  /** One request to another anonymous route (refresh, logout, tenants, accept an invitation); 429 past the address's limit. */
  anonymous(address: string): Promise<void>;
}

/** The address a request came from: Express's `req.ip` (behind a proxy, configure `trust proxy`). */
export function clientAddress(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

/**
 * An account as the lockout counts it: the tenant (null: the tenant-less POST /auth/tenants) and
 * the lower-cased email, hashed so Redis holds no email addresses.
 */
export function loginAccount(tenantId: string | null, email: string): string {
  return createHash('sha256').update(`${tenantId ?? '-'}\u0000${email.toLowerCase()}`).digest('base64url').slice(0, 22);
}
