-- The audit log (libs/platform/audit): who did what to which tenant, append-only and tamper-evident.
-- Each entry's hash covers the previous entry's hash and the entry's own canonical text, so a row
-- changed, removed or inserted afterwards breaks the chain at its seq (`npm run audit -- verify`).

CREATE TABLE audit_log (
  -- Gapless: assigned under the append lock from the head, never from a sequence (a rolled-back
  -- nextval would leave a hole that looks exactly like a deleted entry).
  seq          bigint PRIMARY KEY CHECK (seq > 0),
  id           uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  -- Milliseconds: keyset cursors round-trip exactly through JS Dates, and the hash text names the same instant.
  created_at   timestamptz NOT NULL,
  actor_type   text NOT NULL CHECK (actor_type IN ('operator', 'user', 'system', 'anonymous')),
  actor_id     text CHECK (length(actor_id) BETWEEN 1 AND 200),
  -- Under impersonation: the user the operator (actor) acted as.
  on_behalf_of text CHECK (length(on_behalf_of) BETWEEN 1 AND 200),
  -- No foreign key: entries outlive the tenants they are about (offboarding keeps its proof here).
  tenant_id    uuid,
  action       text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AND length(action) <= 100),
  request_id   text CHECK (length(request_id) <= 200),
  details      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
  prev_hash    bytea NOT NULL CHECK (length(prev_hash) = 32),
  hash         bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC, id DESC);
CREATE INDEX audit_log_tenant_created_idx ON audit_log (tenant_id, created_at DESC, id DESC);
CREATE INDEX audit_log_action_created_idx ON audit_log (action, created_at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_type, actor_id);

-- The one definition of an entry's hash, used when appending and when verifying. The canonical
-- text is a jsonb array: jsonb's text form is canonical (one spelling per value, keys ordered), NULL
-- stays distinct from '', and the time is formatted in UTC explicitly so that no session TimeZone
-- or DateStyle changes the text of a stored row.
CREATE FUNCTION audit_entry_hash(
  prev_hash bytea, seq bigint, id uuid, created_at timestamptz, actor_type text, actor_id text,
  on_behalf_of text, tenant_id uuid, action text, request_id text, details jsonb
) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
  SELECT sha256(prev_hash || convert_to(jsonb_build_array(
    seq, id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), actor_type, actor_id,
    on_behalf_of, tenant_id, action, request_id, details)::text, 'UTF8'))
$$;

-- Appends one entry at the head. The lock is taken in its own statement before the INSERT: under
-- READ COMMITTED each statement of a volatile function takes a fresh snapshot, so the INSERT reads
-- the head as committed by whoever held the lock before (a single INSERT … SELECT would read it at
-- a snapshot taken before waiting for the lock, and two appends would fork the chain). The lock is
-- held to the end of the caller's transaction: an action and its entry commit together.
CREATE FUNCTION audit_append(
  p_actor_type text, p_actor_id text, p_on_behalf_of text, p_tenant_id uuid, p_action text,
  p_request_id text, p_details jsonb
) RETURNS TABLE (seq bigint, id uuid, created_at timestamptz, hash bytea) LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog
AS $$
DECLARE
  head_seq  bigint;
  head_hash bytea;
  new_id    uuid := gen_random_uuid();
  at        timestamptz := date_trunc('milliseconds', clock_timestamp());
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('strata:audit-log', 0));
  SELECT l.seq, l.hash INTO head_seq, head_hash FROM control.audit_log l ORDER BY l.seq DESC LIMIT 1;
  head_seq := coalesce(head_seq, 0) + 1;
  head_hash := coalesce(head_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
  RETURN QUERY
  INSERT INTO control.audit_log AS l (seq, id, created_at, actor_type, actor_id, on_behalf_of, tenant_id, action, request_id, details, prev_hash, hash)
  VALUES (head_seq, new_id, at, p_actor_type, p_actor_id, p_on_behalf_of, p_tenant_id, p_action, p_request_id, coalesce(p_details, '{}'::jsonb), head_hash,
          control.audit_entry_hash(head_hash, head_seq, new_id, at, p_actor_type, p_actor_id, p_on_behalf_of, p_tenant_id, p_action, p_request_id, coalesce(p_details, '{}'::jsonb)))
  RETURNING l.seq, l.id, l.created_at, l.hash;
END
$$;

-- Append-only for everyone, the owner included: every migration step grants the control role
-- UPDATE and DELETE on all control tables again, so a grant alone would not keep it so. Changing a
-- row takes disabling this trigger as the table's owner, and the chain then shows where.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'control.audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
