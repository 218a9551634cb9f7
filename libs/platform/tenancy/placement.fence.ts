import { preparedStatementName } from './prepared-statements';
import { RetiredHomeError } from './tenancy.errors';

/**
 * The placement fence, the app's side (the mover's side is libs/platform/moves). A tenant's old home is
 * listed in `strata_fence.retired_homes` of its database from the cutover on (migrations/tenant/0005).
 *
 * - Write units take `pg_advisory_xact_lock_shared(FENCE_LOCK_CLASS, hashtext(tenant id))` with their
 *   tenant setup, then check the retired list in a **separate statement** of the same string: at
 *   READ COMMITTED it takes a fresh snapshot after the lock is granted. The mover holds the lock
 *   exclusively while it drains the last changes and retires the home, so a writer either commits
 *   before the drain (and its change is drained) or sees the home retired after it (and is retried
 *   on the new home). Reading the list in the same statement as the lock would use the snapshot
 *   taken before the lock wait and miss the retirement (measured: lost writes).
 * - Read units check the list in their per-statement setup (no lock: a read that passed the check
 *   reads the old home at most as of the cutover, which the new home holds exactly).
 *
 * Both checks ride with the unit's first statement: no round trip of their own.
 */
export const FENCE_LOCK_CLASS = 1398035009; // 'STRA'

/** SQLSTATE raised by strata_fence.refuse_retired(). */
export const RETIRED_HOME_SQLSTATE = 'SR001';



export function isRetiredHome(err: unknown): boolean {
  if (err instanceof RetiredHomeError) return true;
  const e = err as { code?: string; driverError?: { code?: string } } | undefined;
  return e?.code === RETIRED_HOME_SQLSTATE || e?.driverError?.code === RETIRED_HOME_SQLSTATE;
}

// A home that no longer exists at all (dropped after its retention): database, schema or tables gone.
const HOME_GONE = new Set(['3D000', '3F000', '42P01']);

/** The unit failed the way a unit on a dropped old home fails; worth one look at the control plane. */
export function isHomeGone(err: unknown): boolean {
  const e = err as { code?: string; driverError?: { code?: string } } | undefined;
  return HOME_GONE.has(e?.code ?? '') || HOME_GONE.has(e?.driverError?.code ?? '');
}

/**
 * The write units' check, in a statement of its own after the lock (a fresh READ COMMITTED
 * snapshot). Prepared once per connection as FENCE_CHECK_STATEMENT (with TENANT_SETUP_PREPARED):
 * parsed and planned with every unit it cost ~100 µs of PostgreSQL CPU per write (npm run bench,
 * fence on vs off); CASE, not OR, so the raising function only ever runs for a retired home.
 */
export const FENCE_CHECK_SQL =
  'SELECT CASE WHEN EXISTS (SELECT 1 FROM strata_fence.retired_homes WHERE tenant_id = $1::uuid AND schema_name = $2) ' +
  'THEN strata_fence.refuse_retired($1::uuid, $2) END';
export const FENCE_CHECK_STATEMENT = preparedStatementName('strata_fence_check', FENCE_CHECK_SQL);
