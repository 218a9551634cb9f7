import { Client, Query, type QueryResult } from 'pg';
import { serialize } from 'pg-protocol';
import { RETIRED_HOME_SQLSTATE } from './placement.fence';
import { ReadUnitTransactionError } from './tenancy.errors';

/** Where a read unit's statements run: the tenant's schema and id, applied to each statement. */
export interface TenantReadScope {
  /** search_path value, already a quoted identifier (`"t_acme"`). */
  readonly searchPath: string;
  readonly tenantId: string;
  /** The schema's plain name, for the placement fence's retired-home check. */
  readonly schema: string;
}

/**
 * The setup each statement of a read unit carries: the tenant's search_path and id for this
 * transaction only (is_local), the transaction made read-only so a write slipped into a read
 * unit fails instead of running without a transaction around it, and the placement fence: if the
 * tenant has moved out of this home, strata_fence.refuse_retired() raises SR001 and the statement
 * never runs (placement.fence.ts). CASE, not OR, so the raise is only ever evaluated for a retired
 * home. Values are bound, never inlined.
 */
export const ENTER_READ_SQL =
  "SELECT set_config('search_path', $1, true), set_config('app.tenant_id', $2, true), set_config('transaction_read_only', 'on', true), " +
  'CASE WHEN EXISTS (SELECT 1 FROM strata_fence.retired_homes WHERE tenant_id = $2::uuid AND schema_name = $3) THEN strata_fence.refuse_retired($2::uuid, $3) END';

/** The same setup without the fence: only for `npm run bench` to measure the fence (PLACEMENT_FENCE=false). */
export const ENTER_READ_UNFENCED_SQL =
  "SELECT set_config('search_path', $1, true), set_config('app.tenant_id', $2, true), set_config('transaction_read_only', 'on', true)";

/**
 * The name of the setup's prepared statement on a connection that prepares it (TENANT_SETUP_PREPARED).
 * Parsed once per connection, then each statement carries only Bind/Execute: the measured saving was
 * ~17 µs of PostgreSQL CPU per statement (parse, analysis and planning of the setup every time).
 */
export const ENTER_READ_STATEMENT = 'strata_enter_read';

/** pg-pool option (createTenantDataSource) that makes its TenantPgClients prepare the setup. */
export const PREPARED_SETUP_OPTION = 'strataTenantSetupPrepared';
/** pg-pool option: `false` leaves the placement fence out of the read setup (bench only). */
export const PLACEMENT_FENCE_OPTION = 'strataPlacementFence';
const ENTER_READ_UNFENCED_STATEMENT = 'strata_enter_read_unfenced';

// SQLSTATE invalid_sql_statement_name: the server lost the prepared setup (DEALLOCATE, a pooler).
const UNKNOWN_STATEMENT = '26000';

/** One flavour of the setup: its SQL, the name it is prepared under, and its bytes per scope. */
class ReadSetup {
  readonly parseNamed: Buffer;
  // The setup's bytes, built once per scope: they depend only on the tenant, and serialising three
  // messages per statement was a measurable share of a read's client-side CPU. Unnamed: Parse, Bind,
  // Execute; named: Bind and Execute of the prepared statement.
  private readonly unnamed = new WeakMap<TenantReadScope, Buffer>();
  private readonly named = new WeakMap<TenantReadScope, Buffer>();

  constructor(readonly sql: string, readonly statement: string, private readonly fenced: boolean) {
    this.parseNamed = serialize.parse({ name: statement, text: sql });
  }

  messagesOf(scope: TenantReadScope, prepared: boolean): Buffer {
    const cache = prepared ? this.named : this.unnamed;
    let bytes = cache.get(scope);
    if (!bytes) {
      const values = this.fenced ? [scope.searchPath, scope.tenantId, scope.schema] : [scope.searchPath, scope.tenantId];
      bytes = prepared
        ? Buffer.concat([serialize.bind({ statement: this.statement, values }), serialize.execute()])
        : Buffer.concat([serialize.parse({ text: this.sql }), serialize.bind({ values }), serialize.execute()]);
      cache.set(scope, bytes);
    }
    return bytes;
  }
}

const FENCED_SETUP = new ReadSetup(ENTER_READ_SQL, ENTER_READ_STATEMENT, true);
const UNFENCED_SETUP = new ReadSetup(ENTER_READ_UNFENCED_SQL, ENTER_READ_UNFENCED_STATEMENT, false);

/** What a TenantScopedQuery asks of the client it runs on: which setup, and whether it is prepared there yet. */
interface SetupPreparation {
  readonly prepareSetup: boolean;
  readonly setup: ReadSetup;
  setupParsed: boolean;
}

// The parts of pg's Connection and Query this file drives; pg's typings leave them out.
interface PgConnection {
  stream: { writable: boolean; write(chunk: Buffer): boolean; cork?(): void; uncork?(): void };
}
interface PgQueryInternals {
  text: string;
  values?: unknown[];
  submit(connection: PgConnection): Error | null;
  handleDataRow(msg: unknown): void;
  handleCommandComplete(msg: unknown, connection: PgConnection): void;
}
const QueryBase = Query as unknown as new (
  text: string,
  values: unknown[] | undefined,
  callback: (err: Error | null, res: QueryResult) => void,
) => PgQueryInternals & { queryMode?: 'extended' };

/**
 * One statement of a read unit, sent with its tenant setup in the same pipeline segment:
 *
 *   [Parse] Bind/Execute  ENTER_READ_SQL          (no Sync; Parse once per connection when prepared)
 *   Parse/Bind/Describe/Execute  the statement
 *   Sync
 *
 * Until Sync the backend keeps both in one implicit transaction (PostgreSQL's extended-protocol
 * rule), so the transaction-local settings hold for the statement and vanish with it: no BEGIN,
 * no COMMIT, no extra round trip, and nothing left on the connection after the Sync. If the setup
 * fails, the backend skips the statement up to the Sync and the query fails: closed, not open.
 *
 * Hand-written on pg's Query because no library sends two statements under one Sync (pg's own
 * pipeline mode syncs after each query); it subclasses Query so pg's pipeline mode accepts it.
 */
class TenantScopedQuery extends QueryBase {
  private setupPending = true;

  constructor(
    private readonly scope: TenantReadScope,
    private readonly preparation: SetupPreparation,
    text: string,
    values: unknown[] | undefined,
    callback: (err: Error | null, res: QueryResult) => void,
  ) {
    // Text and values positionally: a config object would be deep-copied by pg (measured ~8 µs a query).
    super(text, values, callback);
    // Always the extended protocol: a simple Query message would end the implicit transaction on its own terms.
    this.queryMode = 'extended';
  }

  override submit(connection: PgConnection): Error | null {
    // Refuse what pg would refuse before sending anything, so no setup is ever left without its Sync.
    if (typeof this.text !== 'string') return super.submit(connection);
    if (this.values !== undefined && !Array.isArray(this.values)) return super.submit(connection);
    const stream = connection.stream;
    stream.cork?.();
    try {
      // As pg's Connection#_send does: nothing is written to a stream that is no longer writable
      // (the statement is then not sent either, and pg fails the query with the connection).
      if (stream.writable) {
        const prepared = this.preparation.prepareSetup;
        if (prepared && !this.preparation.setupParsed) {
          // Marked when written, not when acknowledged: a pipelined statement behind this one must
          // not parse it again (42P05). If this Parse fails, the next Bind fails with 26000 and
          // TenantPgClient parses again after that.
          stream.write(this.preparation.setup.parseNamed);
          this.preparation.setupParsed = true;
        }
        stream.write(this.preparation.setup.messagesOf(this.scope, prepared));
      }
      return super.submit(connection);
    } finally {
      stream.uncork?.();
    }
  }

  // The setup's one row and its CommandComplete come first; they are not the caller's result.
  override handleDataRow(msg: unknown): void {
    if (!this.setupPending) super.handleDataRow(msg);
  }

  override handleCommandComplete(msg: unknown, connection: PgConnection): void {
    if (this.setupPending) this.setupPending = false;
    else super.handleCommandComplete(msg, connection);
  }
}

/**
 * The pg Client of every data-plane DataSource (pg-pool's `Client` option). While a read unit
 * holds it (`enterReadScope` … `leaveReadScope`, paired in `finally`), each string query is sent
 * as a TenantScopedQuery; otherwise it is a plain pg Client.
 */
/**
 * Transaction control has no place in a read unit: each statement runs in an implicit transaction
 * that ends at its Sync, and a BEGIN there would turn it into an explicit one that outlives the
 * unit with the tenant's settings still on the connection (TypeORM's save(), transaction() and
 * useTransaction(true) all send START TRANSACTION).
 */
const TRANSACTION_CONTROL = /^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION|SET\s+(SESSION\s+CHARACTERISTICS|TRANSACTION))\b/i;


export class TenantPgClient extends Client implements SetupPreparation {
  private readScope: TenantReadScope | undefined = undefined;
  readonly prepareSetup: boolean;
  readonly setup: ReadSetup;
  setupParsed = false;
  /** Set when a statement of the current read scope hit a retired home (SR001), even if the work swallowed the error. */
  retiredHomeSeen = false;
  /**
   * The backend's transaction status from its last ReadyForQuery: `I` idle, `T` in a transaction,
   * `E` in a failed one. A connection handed back to the pool must be `I`.
   */
  transactionStatus: 'I' | 'T' | 'E' = 'I';

  constructor(config?: ConstructorParameters<typeof Client>[0]) {
    super(config);
    const options = typeof config === 'object' && config !== null ? (config as Record<string, unknown>) : {};
    this.prepareSetup = options[PREPARED_SETUP_OPTION] === true;
    this.setup = options[PLACEMENT_FENCE_OPTION] === false ? UNFENCED_SETUP : FENCED_SETUP;
    (this as unknown as { connection: { on(e: 'readyForQuery', f: (m: { status: 'I' | 'T' | 'E' }) => void): void } }).connection.on(
      'readyForQuery',
      (m) => (this.transactionStatus = m.status),
    );
  }

  /** Idle: no transaction open or aborted on the backend (checked before a connection goes back to the pool). */
  get idle(): boolean {
    return this.transactionStatus === 'I';
  }

  enterReadScope(scope: TenantReadScope): void {
    if (this.readScope) throw new Error('TenantPgClient: a read scope is already entered on this connection');
    this.readScope = scope;
    this.retiredHomeSeen = false;
  }

  leaveReadScope(): void {
    this.readScope = undefined;
  }

  // pg's overloads (callbacks, submittables, config objects) stay as they are outside a read scope.
  override query(...args: unknown[]): never {
    const scope = this.readScope;
    const [config, values] = args;
    if (!scope) return (super.query as (...a: unknown[]) => never)(...args);
    if (typeof config !== 'string' || (values !== undefined && !Array.isArray(values)) || args.length > 2) {
      throw new Error('TenantPgClient: inside a read scope only query(text, values?) is supported');
    }
    // Refused before anything is sent (TypeORM awaits this promise, so a rejection reaches the work).
    if (TRANSACTION_CONTROL.test(config)) return Promise.reject(new ReadUnitTransactionError()) as never;
    return new Promise<QueryResult>((resolve, reject) => {
      const query = new TenantScopedQuery(scope, this, config, values as unknown[] | undefined, (err, res) => {
        if (!err) return resolve(res);
        const code = (err as { code?: string }).code;
        // The statement did not run (closed); parse the setup again with the next one.
        if (code === UNKNOWN_STATEMENT && err.message.includes(this.setup.statement)) this.setupParsed = false;
        if (code === RETIRED_HOME_SQLSTATE) this.retiredHomeSeen = true;
        reject(err);
      });
      (super.query as (q: unknown) => unknown)(query);
    }) as never;
  }
}
