/** Runs one query; a pg Client's or a TypeORM DataSource's `query`, adapted. */
export type AuditQuery = <R>(sql: string, params: unknown[]) => Promise<R[]>;

/** Where the chain breaks, and why. */
export interface AuditChainBreak {
  seq: number;
  reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'seq_gap';
  detail: string;
}

export interface AuditChainReport {
  /** Entries read (up to and including the broken one). */
  checked: number;
  /** The last entry read: note its seq and hash elsewhere, and a later verify proves nothing before it changed (or was cut off). */
  head: { seq: number; hash: string } | null;
  broken: AuditChainBreak | null;
}

/** The hash the first entry chains to. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

interface ChainRow {
  seq: string;
  prev_hash: string;
  hash: string;
  computed: string;
}

/**
 * Walks `control.audit_log` in seq order, in batches, recomputing every hash with the same SQL
 * function the append used (`control.audit_entry_hash`) and checking that each entry chains to the
 * one before it, with no seq missing. Stops at the first break. Read only; any role that may read
 * the table can run it.
 *
 * What it proves: no entry up to the head was changed, removed or inserted since it was written —
 * unless someone recomputed every hash after it, which the head hash noted elsewhere exposes; and
 * entries cut off at the end show as a head older than the one noted.
 */
export async function verifyAuditChain(query: AuditQuery, opts: { batchSize?: number } = {}): Promise<AuditChainReport> {
  const batchSize = opts.batchSize ?? 5_000;
  let checked = 0;
  let expectedSeq = 1;
  let prevHash = AUDIT_GENESIS_HASH;
  let head: AuditChainReport['head'] = null;
  for (;;) {
    const rows = await query<ChainRow>(
      `SELECT seq, encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash,
              encode(control.audit_entry_hash(prev_hash, seq, id, created_at, actor_type, actor_id, on_behalf_of, tenant_id, action, request_id, details), 'hex') AS computed
         FROM control.audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2`,
      [expectedSeq, batchSize],
    );
    for (const row of rows) {
      const seq = Number(row.seq);
      checked++;
      head = { seq, hash: row.hash };
      if (seq !== expectedSeq) {
        return { checked, head, broken: { seq, reason: 'seq_gap', detail: `expected seq ${expectedSeq}, found ${seq}: entries are missing before it` } };
      }
      if (row.prev_hash !== prevHash) {
        return { checked, head, broken: { seq, reason: 'prev_hash_mismatch', detail: 'does not chain to the entry before it (that one was changed, removed or this one inserted)' } };
      }
      if (row.computed !== row.hash) {
        return { checked, head, broken: { seq, reason: 'hash_mismatch', detail: 'its content no longer matches its hash (the entry was changed)' } };
      }
      prevHash = row.hash;
      expectedSeq = seq + 1;
    }
    if (rows.length < batchSize) return { checked, head, broken: null };
  }
}
