/**
 * Which database failures are faults of a database (its server is down, restarting, refusing
 * connections, or a unit waited too long) rather than bugs. For a tenant's home they become 503s
 * with Retry-After (libs/platform/tenancy: tenancy.errors.ts) and open the home's circuit
 * (home.circuit.ts); for the control plane, HttpErrorFilter answers 503 `unavailable` instead of 500.
 * pg-pool's "timeout exceeded when trying to connect" is a full pool, not a dead server: not here.
 */

// Node's socket errors for a server that cannot be reached or dropped the connection.
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);
// SQLSTATEs of a server that is going away or not accepting: class 08 (connection exception),
// admin/crash shutdown, starting up / shutting down, too many connections.
const UNREACHABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
// node-postgres and pg-pool say these in plain Errors without a code.
const UNREACHABLE_MESSAGES =
  /Connection terminated|connection timeout|Client has encountered a connection error|Connection ended unexpectedly|not queryable/i;

/** SQLSTATE lock_not_available: lock_timeout (or NOWAIT) gave up. */
export const LOCK_NOT_AVAILABLE = '55P03';
/** SQLSTATE query_canceled: statement_timeout, or a cancel request (ours, for a client that left). */
export const QUERY_CANCELED = '57014';

function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; driverError?: { code?: unknown } } | null | undefined;
  const code = e?.driverError?.code ?? e?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(err: unknown): string {
  const e = err as { message?: unknown; driverError?: { message?: unknown } } | null | undefined;
  return String(e?.driverError?.message ?? e?.message ?? err);
}

/** The home's server could not be reached, or dropped the unit's connection. */
export function isHomeUnreachable(err: unknown): boolean {
  if (err === null || err === undefined) return false;
  const code = codeOf(err);
  if (code && (SOCKET_CODES.has(code) || UNREACHABLE_SQLSTATES.has(code) || code.startsWith('08'))) return true;
  // AggregateError (happy eyeballs: every address refused) carries the socket errors inside.
  const inner = (err as { errors?: unknown[] }).errors;
  if (Array.isArray(inner) && inner.length > 0 && inner.every(isHomeUnreachable)) return true;
  return !code && UNREACHABLE_MESSAGES.test(messageOf(err));
}

/** The unit gave up waiting: on a lock (lock_timeout) or on its own statement (statement_timeout). */
export function isHomeBusy(err: unknown): boolean {
  const code = codeOf(err);
  if (code === LOCK_NOT_AVAILABLE) return true;
  return code === QUERY_CANCELED && /statement timeout/i.test(messageOf(err));
}

/** A short reason for logs, readiness and the circuit: the code and the first line of the message. */
export function faultReason(err: unknown): string {
  const code = codeOf(err);
  const message = messageOf(err).split('\n')[0].slice(0, 200);
  return code ? `${code}: ${message}` : message;
}
