-- Capacity by plan (libs/platform/capacity, issue 15): how much of one instance a tenant may hold
-- at once and how long its units of work may wait or run. NULL takes the instance's default
-- (TENANT_MAX_CONCURRENT_REQUESTS, DATA_STATEMENT_TIMEOUT_MS, DATA_LOCK_TIMEOUT_MS,
-- DATA_IDLE_IN_TRANSACTION_TIMEOUT_MS, JOBS_TENANT_CONCURRENCY), so a deployment tunes the
-- common case in one place and plans only say where they differ.
ALTER TABLE plans
  ADD COLUMN max_concurrent_requests          integer CHECK (max_concurrent_requests > 0),
  ADD COLUMN statement_timeout_ms             integer CHECK (statement_timeout_ms > 0),
  ADD COLUMN lock_timeout_ms                  integer CHECK (lock_timeout_ms > 0),
  ADD COLUMN idle_in_transaction_timeout_ms   integer CHECK (idle_in_transaction_timeout_ms > 0),
  ADD COLUMN job_concurrency                  integer CHECK (job_concurrency > 0);

-- Free tenants get less of a shared instance; enterprise (silo by default) gets more room and a
-- longer statement budget for its reports. Standard keeps the instance defaults.
UPDATE plans SET max_concurrent_requests = 4, statement_timeout_ms = 5000, job_concurrency = 2 WHERE id = 'free';
UPDATE plans SET max_concurrent_requests = 32, statement_timeout_ms = 30000, job_concurrency = 16 WHERE id = 'enterprise';
