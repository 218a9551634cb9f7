-- The fast path of usage_reserve (0010) no longer keeps a shard's row lock when it fails.
--
-- An UPDATE that meets a row another transaction changed locks the newest version and then
-- re-checks its WHERE on it (READ COMMITTED's EvalPlanQual); when the re-check fails, nothing is
-- updated but the row lock is kept until the transaction ends. A create whose shard ran dry
-- therefore went on to the slow path holding that shard, and waited for the counter row, while the
-- slow path's holder of the counter row waited for that very shard: deadlock (40P01; seen in CI
-- with 60 concurrent creates of one tenant, reproduced by running the plan-limits suite three at once).
-- The fast path now runs in a subtransaction (a PL/pgSQL block with an EXCEPTION clause) that is
-- rolled back when it takes nothing, which releases the locks it took; the slow path then starts
-- holding nothing, and takes the counter row before any shard, as every caller does.
CREATE OR REPLACE FUNCTION usage_reserve(p_tenant uuid, p_counter text, p_amount bigint, p_limit bigint, p_shard int) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
  v_shard uuid := md5(p_counter || '#' || p_shard)::uuid;
  v_total bigint;
  v_share bigint;
BEGIN
  IF p_limit IS NULL THEN
    INSERT INTO usage_counters (tenant_id, id, metric, used) VALUES (p_tenant, md5(p_counter || '#u')::uuid, p_counter || '#u', 0)
      ON CONFLICT (tenant_id, id) DO NOTHING;
    INSERT INTO usage_counters AS c (tenant_id, id, metric, used) VALUES (p_tenant, v_shard, p_counter || '#' || p_shard, p_amount)
      ON CONFLICT (tenant_id, id) DO UPDATE SET used = c.used + EXCLUDED.used, allowance = NULL, allowance_limit = NULL;
    RETURN true;
  END IF;
  BEGIN
    UPDATE usage_counters SET used = used + p_amount
     WHERE tenant_id = p_tenant AND id = v_shard AND allowance_limit = p_limit AND used + p_amount <= allowance
       AND NOT EXISTS (SELECT 1 FROM usage_counters m WHERE m.tenant_id = p_tenant AND m.id = md5(p_counter || '#u')::uuid);
    IF FOUND THEN RETURN true; END IF;
    -- Nothing taken: roll the block back, and with it any row lock the UPDATE's re-check kept.
    RAISE EXCEPTION USING ERRCODE = 'SU001';
  EXCEPTION WHEN SQLSTATE 'SU001' THEN
    NULL;
  END;
  v_total := usage_fold(p_tenant, p_counter);
  IF v_total + p_amount > p_limit THEN RETURN false; END IF;
  UPDATE usage_counters SET used = v_total + p_amount WHERE tenant_id = p_tenant AND id = md5(p_counter)::uuid;
  v_share := (p_limit - v_total - p_amount) / 32;
  IF v_share > 0 THEN
    INSERT INTO usage_counters (tenant_id, id, metric, used, allowance, allowance_limit)
    SELECT p_tenant, md5(p_counter || '#' || g)::uuid, p_counter || '#' || g, 0, v_share, p_limit FROM generate_series(0, 15) g;
  END IF;
  RETURN true;
END
$fn$;
