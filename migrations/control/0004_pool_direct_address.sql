-- A pool's direct address, beside host/port. host/port is where units of work connect: the
-- server, or a connection pooler in front of it (PgBouncer in transaction mode). The direct address
-- is where session work connects — provisioning, migrations, a move's copy (advisory locks, COPY,
-- triggers, pg_temp helpers), which a transaction-mode pooler cannot carry. NULL: the same as host/port.
ALTER TABLE pools
  ADD COLUMN direct_host text CHECK (length(direct_host) BETWEEN 1 AND 255),
  ADD COLUMN direct_port integer CHECK (direct_port BETWEEN 1 AND 65535);
