-- Usage counter shards (libs/platform/plans, "Why"): creates of one tenant no longer queue on one
-- counter row through their commits.
--
-- * No limit (null): a create adds to one of 16 shard rows chosen at random, `<counter>#0..15`, and
--   makes sure the marker row `<counter>#u` exists (ON CONFLICT DO NOTHING: no lock on it once it does).
-- * A limit: escrow. Under the counter row's and all its shards' row locks (the "slow path"),
--   usage = row + shards is checked against the limit and folded into the row, and half of what is
--   left under the limit is handed out again as 16 equal `allowance`s, one per shard. A create then
--   takes from one shard's allowance with a single-row update (the "fast path"), as long as the
--   allowance was granted under the same limit and no unlimited count (the marker) came in since.
--   The row plus every allowance never exceeds the limit, so neither does usage: exact. Near the
--   limit the allowances are 0 and every create takes the slow path, queuing as before.
-- Shard ids stay md5(metric), so the one shape's primary key and the move copier's
-- ON CONFLICT (tenant_id, id) are unchanged; the functions run as the caller, under RLS.
ALTER TABLE usage_counters
  DROP CONSTRAINT usage_counters_metric_check,
  ADD CONSTRAINT usage_counters_metric_check CHECK (metric ~ '^[a-z_]{1,40}(:[0-9]{4}-[0-9]{2})?(#([0-9]{1,2}|u))?$'),
  -- A shard's share of the headroom, and the limit it was granted under; null on the counter's own row and on unlimited shards.
  ADD COLUMN allowance bigint CHECK (allowance >= 0),
  ADD COLUMN allowance_limit bigint;

-- Under the counter row's lock and its shards' (in id order, after the row: one order for every
-- caller), what the counter counts in all; the shards and the marker are folded away.
CREATE FUNCTION usage_fold(p_tenant uuid, p_counter text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
  v_main uuid := md5(p_counter)::uuid;
  v_rest uuid[] := ARRAY(SELECT md5(p_counter || '#' || g)::uuid FROM generate_series(0, 15) g) || md5(p_counter || '#u')::uuid;
  v_total bigint;
BEGIN
  INSERT INTO usage_counters (tenant_id, id, metric, used) VALUES (p_tenant, v_main, p_counter, 0) ON CONFLICT (tenant_id, id) DO NOTHING;
  PERFORM 1 FROM usage_counters WHERE tenant_id = p_tenant AND id = v_main FOR UPDATE;
  PERFORM 1 FROM usage_counters WHERE tenant_id = p_tenant AND id = ANY(v_rest) ORDER BY id FOR UPDATE;
  -- A new statement: a snapshot taken after the locks were granted, so every committed count is in it.
  SELECT coalesce(sum(used), 0) INTO v_total FROM usage_counters WHERE tenant_id = p_tenant AND (id = v_main OR id = ANY(v_rest));
  DELETE FROM usage_counters WHERE tenant_id = p_tenant AND id = ANY(v_rest);
  UPDATE usage_counters SET used = v_total WHERE tenant_id = p_tenant AND id = v_main;
  RETURN v_total;
END
$fn$;

-- True when `p_amount` was taken (on shard `p_shard`, 0..15, when it can), false when it would pass
-- `p_limit` (the caller rolls its unit back). p_limit null: no limit.
CREATE FUNCTION usage_reserve(p_tenant uuid, p_counter text, p_amount bigint, p_limit bigint, p_shard int) RETURNS boolean
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
  UPDATE usage_counters SET used = used + p_amount
   WHERE tenant_id = p_tenant AND id = v_shard AND allowance_limit = p_limit AND used + p_amount <= allowance
     AND NOT EXISTS (SELECT 1 FROM usage_counters m WHERE m.tenant_id = p_tenant AND m.id = md5(p_counter || '#u')::uuid);
  IF FOUND THEN RETURN true; END IF;
  v_total := usage_fold(p_tenant, p_counter);
  IF v_total + p_amount > p_limit THEN RETURN false; END IF;
  UPDATE usage_counters SET used = v_total + p_amount WHERE tenant_id = p_tenant AND id = md5(p_counter)::uuid;
  -- Half of the headroom over the 16 shards; the other half stays for this path.
  v_share := (p_limit - v_total - p_amount) / 32;
  IF v_share > 0 THEN
    INSERT INTO usage_counters (tenant_id, id, metric, used, allowance, allowance_limit)
    SELECT p_tenant, md5(p_counter || '#' || g)::uuid, p_counter || '#' || g, 0, v_share, p_limit FROM generate_series(0, 15) g;
  END IF;
  RETURN true;
END
$fn$;

-- Gives `p_amount` back (never below 0): folds the shards (their allowances go back to the headroom).
CREATE FUNCTION usage_release(p_tenant uuid, p_counter text, p_amount bigint) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  v_total bigint := usage_fold(p_tenant, p_counter);
BEGIN
  UPDATE usage_counters SET used = greatest(v_total - p_amount, 0) WHERE tenant_id = p_tenant AND id = md5(p_counter)::uuid;
END
$fn$;
