-- The placement fence (libs/tenancy, libs/moves): one per database, shared by every tenant home in
-- it (the pool's `shared` schema, each bridge schema, a silo's own database).
--
-- A tenant that moved out of a home is listed here (tenant, schema) from the cutover on. Every unit
-- of work checks it with its tenant setup (same round trip): a unit that lands on a retired home —
-- an instance whose registry cache has not heard of the move yet — fails with SQLSTATE SR001 and is
-- retried on the new placement, so nothing is read from or written to the old home after cutover.
-- Write units also take a shared advisory lock on the tenant (class 1398035009, hashtext(id)) before
-- their check; the mover takes it exclusively to drain the last changes and retire the home.
-- Empty for tenants that never moved: the check is one index probe on an empty table.
-- Not a tenant target: no RLS, the app role may only read it.

-- Many targets of one database migrate at once; only one creates the shared objects.
SELECT pg_advisory_xact_lock(hashtext('strata:placement-fence'));

CREATE SCHEMA IF NOT EXISTS strata_fence;

CREATE TABLE IF NOT EXISTS strata_fence.retired_homes (
  tenant_id   uuid NOT NULL,
  schema_name text NOT NULL,
  move_id     uuid,
  retired_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, schema_name)
);

-- Called only when a retired row exists: raises, so the unit's implicit or explicit transaction aborts.
CREATE OR REPLACE FUNCTION strata_fence.refuse_retired(tenant uuid, home text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'tenant % no longer lives in schema % of this database: it moved', tenant, home
    USING ERRCODE = 'SR001', HINT = 'reload the tenant''s placement from the control plane and retry';
END
$fn$;

-- The migrator names the app role in strata.app_role for this transaction.
DO $grant$ BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA strata_fence TO %I', current_setting('strata.app_role'));
  EXECUTE format('GRANT SELECT ON strata_fence.retired_homes TO %I', current_setting('strata.app_role'));
END $grant$;
