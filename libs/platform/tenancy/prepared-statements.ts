import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';

/**
 * The few statements tenancy prepares per connection (the read setup, the write units' fence check),
 * and how it survives a server connection that disagrees about them.
 *
 * Behind a pooler in transaction mode without prepared-statement support (PgBouncer < 1.21) a
 * client's statements go to whichever server connection the pooler hands out, and server connections
 * are renewed (`server_lifetime`, `RECONNECT`) and shared by every client. So the server may lack a
 * statement the client prepared (`26000`, as after a `DEALLOCATE`), or hold one the client never
 * prepared there (`42P05`). Either way the failing message is ours and nothing after it ran: the
 * client believes the server's answer from then on and the work is sent again (tenant-pg.client.ts
 * for read statements, TenantConnectionManager for write units).
 *
 * And after a `42P05` it stops preparing there: that cannot happen on a session of one's own, so the
 * server connections behind that address are shared — a pooler — and every client of the process
 * connecting there sends its statements unnamed from then on. The prepared setup saves PostgreSQL a
 * parse per statement; against a pooler that renews and shares server connections it would cost a
 * failed round trip now and then instead (measured in test/e2e/pgbouncer.e2e-spec.ts). A `26000`
 * proves nothing (a DEALLOCATE loses a statement as well): the statement is prepared again. So a
 * pooler that also empties its server connections after every transaction (PgBouncer's
 * `server_reset_query_always = 1` with `DISCARD ALL`), where a `42P05` never comes, costs a round
 * trip per statement until TENANT_SETUP_PREPARED=false — still without an error.
 */

/** invalid_sql_statement_name: the server connection lacks the statement. */
export const UNKNOWN_STATEMENT = '26000';
/** duplicate_prepared_statement: the server connection has it already. */
export const DUPLICATE_STATEMENT = '42P05';

/**
 * The name a statement of ours is prepared under: its stem and a hash of its text. Server connections
 * behind a pooler are shared by every client, so a name prepared by one instance is bound by another:
 * with the text in the name two releases with different SQL (a rolling deploy) never bind each
 * other's statement, and a name the server already knows (42P05) is known to be exactly this text.
 */
export function preparedStatementName(stem: string, text: string): string {
  return `${stem}_${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
}

/** Whether `err` (pg's, or TypeORM's wrapping it) is the server disagreeing with the client about the statement `name`. */
export function isPreparedStatementMismatch(err: unknown, name: string): boolean {
  const e = ((err as { driverError?: unknown } | undefined)?.driverError ?? err) as { code?: string; message?: string } | undefined;
  return (e?.code === UNKNOWN_STATEMENT || e?.code === DUPLICATE_STATEMENT) && String(e?.message).includes(`"${name}"`);
}

/**
 * How often this process recovered from such a disagreement: read statements sent again, write units
 * run again. Each one cost a round trip or a unit, not an error; the pooler tests report them.
 */
export const preparedStatementRecoveries = { reads: 0, writes: 0 };

/** Addresses (`host:port`) found to share server connections between clients; nothing is prepared there. */
const sharedServerAddresses = new Set<string>();
const logger = new Logger('PreparedStatements');

/** Whether statements to `address` are sent unnamed because its server connections are shared (a pooler). */
export function sharesServerConnections(address: string): boolean {
  return sharedServerAddresses.has(address);
}

/** Records that `address` shares server connections between clients (see above); logged once per address. */
export function markSharedServerConnections(address: string, evidence: string): void {
  if (sharedServerAddresses.has(address)) return;
  sharedServerAddresses.add(address);
  logger.warn(
    `server connections behind ${address} are shared between clients (${evidence}): a connection pooler in transaction mode ` +
      'without prepared-statement support (PgBouncer < 1.21). Tenant setups are sent unprepared there from now on; ' +
      'TENANT_SETUP_PREPARED=false skips finding this out.',
  );
}

/** Forgets every address found sharing server connections (tests that provoke the evidence one after another). */
export function forgetSharedServerConnections(): void {
  sharedServerAddresses.clear();
}
