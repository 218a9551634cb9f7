-- usage_take: usage_reserve (0010, 0011) that raises instead of answering false.
--
-- A unit of work sends its quota statements in the same round trip as its COMMIT (pipelined, one
-- socket write: TenantConnectionManager.commitWith). For that the refusal must abort the
-- transaction, so the COMMIT behind it answers ROLLBACK and nothing of the unit is kept; a boolean
-- answer would only be read after the COMMIT had already made the unit's rows durable.
-- SQLSTATE SU002 is what the plans lib maps to 402 plan_limit_reached.
CREATE OR REPLACE FUNCTION usage_take(p_tenant uuid, p_counter text, p_amount bigint, p_limit bigint, p_shard int) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF NOT usage_reserve(p_tenant, p_counter, p_amount, p_limit, p_shard) THEN
    RAISE EXCEPTION 'plan limit reached on %', p_counter USING ERRCODE = 'SU002';
  END IF;
END
$fn$;
