/** Where a durable executor's rows live and which of them are still work to do. */
export interface LeasedTableShape {
  /** Schema-qualified, e.g. `control.tenant_moves`. */
  table: string;
  /** The row's key column: `$1` of renew and release. */
  key: string;
  /** SQL condition of a row that is still work to do (claimable, renewable). */
  open: string;
  /** The oldest claimable row first, by this column. */
  order: string;
  /** What a claim returns (the repository maps it to its record). */
  columns: string;
}

export interface ClaimOptions {
  /** More assignments made by the claim itself (`started_at = coalesce(started_at, now())`). */
  set?: readonly string[];
  /** More conditions on the claimable row; their parameters start at `$3`. */
  where?: readonly string[];
  /** Commit the claim without waiting for its WAL flush (see CHECKPOINT_COMMIT): for executors whose end state is a durable write. */
  checkpoint?: boolean;
}

export interface ReleaseOptions {
  /** More assignments (attempts, the error); their parameters start at `$4`. */
  set?: readonly string[];
  /** Release only a row still open (one that finished meanwhile keeps its end state untouched). */
  openOnly?: boolean;
}

/**
 * A RETURNING item (or select-list item) that makes its statement's own implicit transaction commit
 * without waiting for the WAL flush (`synchronous_commit = off`, transaction-local: it ends with the
 * statement). For progress checkpoints of a durable executor: the executor's final write commits
 * with the default and flushes the WAL up to it, so every checkpoint before it is durable too (the
 * WAL is one sequence). A crash of the server before that loses at most the last checkpoints, which
 * the executor redoes (its steps are safe to run again; a lost claim makes its next conditional
 * write fail, as a lost lease does). Saves one flush (~0.4–2 ms) per checkpoint.
 * Hand-written: `SET LOCAL` cannot ride in a parameterised statement, `set_config(…, true)` can.
 */
export const CHECKPOINT_COMMIT = `set_config('synchronous_commit', 'off', true) AS checkpoint_commit`;

/** `now()` plus a parameter in milliseconds, as every lease column is written. */
export const msFromNow = (param: string): string => `now() + make_interval(secs => ${param} / 1000.0)`;

/**
 * The claim, renew and release statements of one leased table. Each repository keeps its own
 * method per statement (one query each); only the SQL is built here, once, at module load.
 * Parameters are the same in every table: claim `$1` owner, `$2` lease ms; renew `$1` key,
 * `$2` owner, `$3` lease ms; release `$1` key, `$2` owner, `$3` delay ms.
 */
export class LeasedTable {
  /** The row is this executor's and still open: the condition of every change an executor makes. */
  readonly held: string;
  /** Lets go of a row for good (its end state is written in the same statement). */
  readonly letGo = 'lease_owner = NULL, lease_until = NULL';

  constructor(readonly shape: LeasedTableShape) {
    this.held = `${shape.key} = $1 AND lease_owner = $2 AND ${shape.open}`;
  }

  /**
   * Claims the oldest open row nobody holds (or whose holder's lease ran out, or whose back-off is
   * over). SKIP LOCKED: two executors claiming at once take two different rows, never wait on each other.
   */
  claim(options: ClaimOptions = {}): string {
    const { table, key, open, order, columns } = this.shape;
    const set = [`lease_owner = $1`, `lease_until = ${msFromNow('$2')}`, ...(options.set ?? [])].join(', ');
    const where = [open, '(lease_until IS NULL OR lease_until < now())', ...(options.where ?? [])].join(' AND ');
    return `UPDATE ${table} SET ${set}
        WHERE ${key} = (SELECT ${key} FROM ${table}
                         WHERE ${where}
                         ORDER BY ${order} FOR UPDATE SKIP LOCKED LIMIT 1)
        RETURNING ${columns}${options.checkpoint ? `, ${CHECKPOINT_COMMIT}` : ''}`;
  }

  /** Extends the lease; returns the key only while the row is still this owner's and open. */
  renew(): string {
    const { table, key } = this.shape;
    return `UPDATE ${table} SET lease_until = ${msFromNow('$3')}
        WHERE ${this.held} RETURNING ${key}`;
  }

  /** Gives the row back, claimable again after the delay (a retry's back-off). */
  release(options: ReleaseOptions = {}): string {
    const { table, key, open } = this.shape;
    const set = ['lease_owner = NULL', `lease_until = ${msFromNow('$3')}`, ...(options.set ?? [])].join(', ');
    return `UPDATE ${table} SET ${set}
        WHERE ${key} = $1 AND lease_owner = $2${options.openOnly ? ` AND ${open}` : ''}`;
  }
}

type Row = Record<string, unknown>;

/** TypeORM answers UPDATE/DELETE … RETURNING with [rows, affected] and SELECT/INSERT with rows. */
export function rowsOf(result: unknown): Row[] {
  const r = result as unknown[];
  return Array.isArray(r) && r.length === 2 && Array.isArray(r[0]) && typeof r[1] === 'number' ? (r[0] as Row[]) : (r as Row[]);
}
