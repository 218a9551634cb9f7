import { Client, Query, type QueryResult } from 'pg';
import { serialize } from 'pg-protocol';
import { RETIRED_HOME_SQLSTATE } from './placement.fence';
import {
  DUPLICATE_STATEMENT,
  isPreparedStatementMismatch,
  markSharedServerConnections,
  preparedStatementName,
  preparedStatementRecoveries,
  sharesServerConnections,
} from './prepared-statements';
import { ReadUnitTransactionError } from './tenancy.errors';
import { SERVER_BUDGET_OPTION, type ServerBudgetGate, type ServerSlot } from './server-connection.budget';

/** Where a read unit's statements run: the tenant's schema and id, applied to each statement. */
export interface TenantReadScope {
  /** search_path value, already a quoted identifier (`"t_acme"`). */
  readonly searchPath: string;
  readonly tenantId: string;
  /** The schema's plain name, for the placement fence's retired-home check. */
  readonly schema: string;
  /**
   * The tenant plan's statement and lock budgets when they differ from the instance's (the
   * client's own setup carries those): its statements go out with the setup of these budgets.
   */
  readonly budgets?: ReadBudgets;
}

/** A read unit's budgets (DATA_STATEMENT_TIMEOUT_MS, DATA_LOCK_TIMEOUT_MS, or a plan's). */
export interface ReadBudgets {
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
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

/** pg-pool option: the unit budgets (DATA_STATEMENT_TIMEOUT_MS, DATA_LOCK_TIMEOUT_MS) each read statement carries. */
export const UNIT_BUDGETS_OPTION = 'strataUnitBudgets';

/**
 * The read setup with the unit's budgets: statement_timeout and lock_timeout for the statement's
 * implicit transaction only (inlined: they are process-wide integers, never request input).
 */
export function enterReadSql(fenced: boolean, budgets?: { statementTimeoutMs: number; lockTimeoutMs: number }): string {
  const base = fenced ? ENTER_READ_SQL : ENTER_READ_UNFENCED_SQL;
  if (!budgets) return base;
  const ms = (n: number) => {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`refusing unit budget ${n}: not a non-negative integer of milliseconds`);
    return n;
  };
  const parts = [];
  if (ms(budgets.statementTimeoutMs) > 0) parts.push(`set_config('statement_timeout', '${budgets.statementTimeoutMs}', true)`);
  if (ms(budgets.lockTimeoutMs) > 0) parts.push(`set_config('lock_timeout', '${budgets.lockTimeoutMs}', true)`);
  // Before the fence's CASE, so its lookup is bounded too.
  return parts.length ? base.replace("'on', true)", `'on', true), ${parts.join(', ')}`) : base;
}

/**
 * The name of the setup's prepared statement on a connection that prepares it (TENANT_SETUP_PREPARED):
 * `strata_enter_read_<hash of the text>`, so setups with other budgets (another instance's
 * configuration, another release) never share a name behind a pooler. Parsed once per connection,
 * then each statement carries only Bind/Execute: the measured saving was ~17 µs of PostgreSQL CPU
 * per statement (parse, analysis and planning of the setup every time).
 */
export function enterReadStatement(fenced: boolean, budgets?: { statementTimeoutMs: number; lockTimeoutMs: number }): string {
  return preparedStatementName(fenced ? 'strata_enter_read' : 'strata_enter_read_unfenced', enterReadSql(fenced, budgets));
}

/** pg-pool option (createTenantDataSource) that makes its TenantPgClients prepare the setup. */
export const PREPARED_SETUP_OPTION = 'strataTenantSetupPrepared';
/** pg-pool option: `false` leaves the placement fence out of the read setup (bench only). */
export const PLACEMENT_FENCE_OPTION = 'strataPlacementFence';

/** Attempts of one read statement: as the client believes, as corrected by the server's answer, then unprepared. */
const READ_ATTEMPTS = 3;

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
      bytes = ownBuffer(
        prepared
          ? [serialize.bind({ statement: this.statement, values }), serialize.execute()]
          : [serialize.parse({ text: this.sql }), serialize.bind({ values }), serialize.execute()],
      );
      cache.set(scope, bytes);
    }
    return bytes;
  }
}

/**
 * The parts copied into a buffer with its own memory. Buffer.concat of ~100 bytes is carved from
 * Node's shared 8 KiB pool slab, and a kept slice keeps its whole slab alive: cached per tenant,
 * that pinned ~10 KB per tenant served (issue 15). allocUnsafeSlow never uses the slab.
 */
export function ownBuffer(parts: Buffer[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return out;
}

// One setup per flavour and budget (a process has one; tests build apps with others).
const READ_SETUPS = new Map<string, ReadSetup>();
function readSetupOf(fenced: boolean, budgets: { statementTimeoutMs: number; lockTimeoutMs: number } | undefined): ReadSetup {
  const sql = enterReadSql(fenced, budgets);
  let setup = READ_SETUPS.get(sql);
  if (!setup) {
    setup = new ReadSetup(sql, enterReadStatement(fenced, budgets), fenced);
    READ_SETUPS.set(sql, setup);
  }
  return setup;
}

// The setup of a scope's own budgets, by the budgets object (one per plan, kept by the caller) and
// the fence flag: found without building the SQL again on every statement.
const SETUPS_BY_BUDGETS = new WeakMap<ReadBudgets, { fenced?: ReadSetup; unfenced?: ReadSetup }>();
function readSetupFor(fenced: boolean, budgets: ReadBudgets): ReadSetup {
  let both = SETUPS_BY_BUDGETS.get(budgets);
  if (!both) SETUPS_BY_BUDGETS.set(budgets, (both = {}));
  const key = fenced ? 'fenced' : 'unfenced';
  return (both[key] ??= readSetupOf(fenced, budgets));
}

/** What a TenantScopedQuery asks of the client it runs on: which setup, and whether it is prepared there yet. */
interface SetupPreparation {
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
  handleError(err: Error, connection: PgConnection): void;
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
  /** The error arrived before the setup completed: the setup failed, and the statement never ran. */
  failedInSetup = false;

  constructor(
    private readonly scope: TenantReadScope,
    private readonly preparation: SetupPreparation,
    /** Send the setup as the prepared statement (else Parse/Bind/Execute unnamed). */
    private readonly prepared: boolean,
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
        const prepared = this.prepared;
        if (prepared && !this.preparation.setupParsed) {
          // Marked when written, not when acknowledged: a pipelined statement behind this one must
          // not parse it again (42P05). If this Parse fails, TenantPgClient corrects the mark
          // from the server's answer and sends the statement again.
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

  override handleError(err: Error, connection: PgConnection): void {
    this.failedInSetup = this.setupPending;
    super.handleError(err, connection);
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
  /** Counts read scopes entered: a statement retried after its unit left the connection must not be sent. */
  private readScopeEntries = 0;
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
  /** `host:port` this client connects to: where shared server connections are recorded (prepared-statements.ts). */
  private readonly address: string;
  /**
   * The error the connection died of, when the server ended it between statements (pg emits it as
   * 'error', and TypeORM then releases the unit's runner): lets the unit say why, e.g. 25P03, its
   * idle-in-transaction budget, which is the tenant's doing and not a server fault.
   */
  connectionError: (Error & { code?: string }) | undefined = undefined;
  private readonly fenced: boolean;
  /** Setups of other budgets (plans') this connection has used, each with whether it is prepared here. */
  private readonly otherSetups = new Map<ReadSetup, SetupPreparation>();

  /** The per-server connection budget this connection counts against (none outside DataSources built by createTenantDataSource). */
  private readonly gate: ServerBudgetGate | undefined;
  private readonly connectTimeoutMs: number | undefined;

  constructor(config?: ConstructorParameters<typeof Client>[0]) {
    super(config);
    const options = typeof config === 'object' && config !== null ? (config as Record<string, unknown>) : {};
    this.gate = options[SERVER_BUDGET_OPTION] as ServerBudgetGate | undefined;
    this.connectTimeoutMs = typeof options.connectionTimeoutMillis === 'number' ? options.connectionTimeoutMillis : undefined;
    this.prepareSetup = options[PREPARED_SETUP_OPTION] === true;
    const budgets = options[UNIT_BUDGETS_OPTION] as { statementTimeoutMs: number; lockTimeoutMs: number } | undefined;
    this.fenced = options[PLACEMENT_FENCE_OPTION] !== false;
    this.setup = readSetupOf(this.fenced, budgets);
    const self = this as unknown as { host: string; port: number };
    this.address = `${self.host}:${self.port}`;
    this.on('error', (err: Error) => (this.connectionError = err));
    (this as unknown as { connection: { on(e: 'readyForQuery', f: (m: { status: 'I' | 'T' | 'E' }) => void): void } }).connection.on(
      'readyForQuery',
      (m) => (this.transactionStatus = m.status),
    );
  }

  /**
   * Takes a slot of the server's connection budget before connecting, and gives it back when the
   * socket ends (or the connect fails). The wait is cut short of pg-pool's connection timeout, which
   * would otherwise destroy the socket under us and turn the 503 into a generic timeout.
   */
  override connect(): Promise<Client>;
  override connect(callback: ((err: Error) => void) | ((err: null, c: Client) => void)): void;
  override connect(callback?: ((err: Error) => void) | ((err: null, c: Client) => void)): Promise<Client> | void {
    const gate = this.gate;
    if (!gate) return callback ? super.connect(callback) : super.connect();
    const waitMs = Math.min(gate.budget.acquireTimeoutMs, this.connectTimeoutMs ? Math.max(1, this.connectTimeoutMs - 100) : Infinity);
    const connected = gate.budget.acquire(this.address, gate.kind, waitMs).then(async (slot: ServerSlot) => {
      this.once('end', () => slot.release());
      try {
        await super.connect();
        return this as Client;
      } catch (err) {
        slot.release();
        throw err;
      }
    });
    if (!callback) return connected;
    const done = callback as (err: Error | null, c?: Client) => void;
    connected.then((c) => done(null, c), (err: Error) => done(err));
  }

  /** Whether this client prepares its statements: asked to, and its server connections are its own. */
  get preparesStatements(): boolean {
    return this.prepareSetup && !sharesServerConnections(this.address);
  }

  /** Idle: no transaction open or aborted on the backend (checked before a connection goes back to the pool). */
  get idle(): boolean {
    return this.transactionStatus === 'I';
  }

  /** The setup a scope's statements carry here: the connection's own, or its plan's budgets' one. */
  private preparationOf(scope: TenantReadScope): SetupPreparation {
    if (!scope.budgets) return this;
    const setup = readSetupFor(this.fenced, scope.budgets);
    if (setup === this.setup) return this;
    let preparation = this.otherSetups.get(setup);
    if (!preparation) this.otherSetups.set(setup, (preparation = { setup, setupParsed: false }));
    return preparation;
  }

  enterReadScope(scope: TenantReadScope): void {
    if (this.readScope) throw new Error('TenantPgClient: a read scope is already entered on this connection');
    this.readScope = scope;
    this.readScopeEntries++;
    this.retiredHomeSeen = false;
  }

  leaveReadScope(): void {
    this.readScope = undefined;
  }

  // pg's overloads (callbacks, submittables, config objects) stay as they are outside a read scope.
  override query(...args: unknown[]): never {
    const scope = this.readScope;
    const [config, values] = args;
    if (!scope) {
      const name = (config as { name?: unknown } | null)?.name;
      const plain = typeof name === 'string' && typeof config === 'object' && typeof (config as { submit?: unknown }).submit !== 'function';
      if (!plain) return (super.query as (...a: unknown[]) => never)(...args);
      // A named statement of a write unit (the fence check). Where server connections are shared it
      // goes unnamed; else keep pg's record of what this connection has prepared in line with what
      // the server said, so the next unit parses it again (26000) or stops parsing it (42P05). The
      // unit itself fails and is run again by TenantConnectionManager; the caller gets this rejection.
      if (!this.preparesStatements) {
        const { name: _unnamed, ...rest } = config as Record<string, unknown>;
        return (super.query as (...a: unknown[]) => never)(rest, ...args.slice(1));
      }
      const result = (super.query as (...a: unknown[]) => unknown)(...args);
      if (result instanceof Promise) result.catch((err: unknown) => this.notePreparedStatementError(err, name, (config as { text?: string }).text));
      return result as never;
    }
    if (typeof config !== 'string' || (values !== undefined && !Array.isArray(values)) || args.length > 2) {
      throw new Error('TenantPgClient: inside a read scope only query(text, values?) is supported');
    }
    // Refused before anything is sent (TypeORM awaits this promise, so a rejection reaches the work).
    if (TRANSACTION_CONTROL.test(config)) return Promise.reject(new ReadUnitTransactionError()) as never;
    const entry = this.readScopeEntries;
    const preparation = this.preparationOf(scope);
    return new Promise<QueryResult>((resolve, reject) => {
      const send = (attempt: number) => {
        // The last attempt parses the setup unnamed: nothing a server connection holds can fail it.
        const prepared = this.preparesStatements && attempt < READ_ATTEMPTS;
        const query: TenantScopedQuery = new TenantScopedQuery(scope, preparation, prepared, config, values as unknown[] | undefined, (err, res) => {
          if (!err) return resolve(res);
          const code = (err as { code?: string }).code;
          if (query.failedInSetup && isPreparedStatementMismatch(err, preparation.setup.statement)) {
            // The setup failed, so the statement never ran (closed). The server said whether it has
            // the setup: believe it from now on, and send the statement again — only while its own
            // unit still holds this connection (once it has left, another tenant's unit may have it).
            preparation.setupParsed = code === DUPLICATE_STATEMENT;
            this.noteMismatch(code);
            if (attempt < READ_ATTEMPTS && this.readScope === scope && this.readScopeEntries === entry) {
              preparedStatementRecoveries.reads++;
              return send(attempt + 1);
            }
          }
          if (code === RETIRED_HOME_SQLSTATE) this.retiredHomeSeen = true;
          reject(err);
        });
        (super.query as (q: unknown) => unknown)(query);
      };
      send(1);
    }) as never;
  }

  /** pg remembers which named statements this connection parsed; a server that disagrees corrects it. */
  private notePreparedStatementError(err: unknown, name: string, text: string | undefined): void {
    if (!isPreparedStatementMismatch(err, name)) return;
    const code = (err as { code?: string }).code;
    const parsed = (this as unknown as { connection: { parsedStatements: Record<string, string> } }).connection.parsedStatements;
    if (code === DUPLICATE_STATEMENT && text !== undefined) parsed[name] = text;
    else delete parsed[name];
    this.noteMismatch(code);
  }

  /**
   * A 42P05 is proof of shared server connections (prepared-statements.ts). A 26000 is not (a
   * DEALLOCATE loses a statement too): the statement is prepared again, and stays prepared.
   */
  private noteMismatch(code: string | undefined): void {
    if (code === DUPLICATE_STATEMENT) markSharedServerConnections(this.address, 'a statement this connection never prepared was there already');
  }
}
