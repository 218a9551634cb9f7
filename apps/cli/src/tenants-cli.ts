import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { Module, type DynamicModule, type INestApplicationContext, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClsModule } from 'nestjs-cls';
import type { DataSource } from 'typeorm';
import { RegistryInvalidationModule } from '#strata/cache';
import { ApiException, loadStrataConfig, StrataConfigModule, type StrataConfig } from '#strata/common';
import { CONTROL_DATA_SOURCE, ControlPlaneModule, TenantEntity, TIERS, type Tier } from '#strata/control-plane';
import { MigratorModule } from '#strata/migrator';
import { MoveErrorCode, MoveExecutor, MovesRunnerModule, MovesService, TERMINAL_PHASES, type TenantMoveView } from '#strata/moves';
import { TenancyModule } from '#strata/tenancy/platform';
import { CliDatabaseError, resolveCliDatabase } from './cli-database';
import { formatElapsed, formatRoute, MoveProgressView, renderMovesTable, type ProgressStream } from './move-progress';

export const TENANTS_USAGE = `usage: npm run tenants -- <command> [options]

  move <slug> --to <tier> [--pool <id>] [--wait]
                       move the tenant online to tier pool|bridge|silo (that tier's default pool,
                       or --pool <id>); prints the move id. Without --wait it exits at once and
                       the API or the worker runs the move (any process with MOVES_EXECUTOR on).
  moves <slug>         the tenant's moves, newest first
  wait <moveId>        follow a move until it ends (this process runs moves too, as with --wait)
  cancel <moveId> [--wait]
                       roll a move back; possible until its cutover begins

  --wait               live progress (phase, rows copied/total, lag, elapsed) until the move ends.
                       This process runs moves meanwhile, so no API or worker is needed.
                       Ctrl-C only stops waiting: the move goes on. If this process was running
                       it, its lease runs out (MOVE_LEASE_MS, 15 s) and the API, the worker or
                       another 'wait' resumes it where it stood.
  --verbose            also print the executor's info logs

Exit status: 0 the move is done (cancel --wait: cancelled), 1 it failed or was cancelled, or an
error; 2 bad usage or a refused request (printed as <code>: <message>, e.g. move_noop); 130 Ctrl-C.

Needs DATABASE_URL (owner connection to the control-plane database) and DB_APP_USER /
DB_CONTROL_USER / DB_CONTROL_PASSWORD as for the API. With DATABASE_URL unset it uses the embedded
PostgreSQL of 'npm start' (.data/dev-secrets.json, EMBEDDED_PG_PORT), which must be running.`;

/** A stream the CLI writes to: process.stdout/stderr, or a buffer in tests. */
export type CliStream = ProgressStream;

export interface TenantsCliIo {
  stdout: CliStream;
  stderr: CliStream;
  /** Aborted on Ctrl-C: waiting stops (the move goes on). */
  signal?: AbortSignal;
  /** How often --wait reads the move (default 250 ms). */
  pollMs?: number;
  /** Where the embedded database's .data is looked for (default process.cwd()). */
  cwd?: string;
}

/** Exit statuses. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

class UsageError extends Error {}

/** What the CLI needs from Nest: config, CLS, control plane, migrator, tenancy and the moves runner. */
@Module({})
export class TenantsCliModule {
  static forRoot(config: StrataConfig): DynamicModule {
    return {
      module: TenantsCliModule,
      imports: [
        StrataConfigModule.forRoot(config),
        ClsModule.forRoot({ global: true }),
        ControlPlaneModule,
        MigratorModule,
        TenancyModule,
        // A cutover this process runs tells every instance (Redis pub/sub; without REDIS_URL,
        // the others see it after their registry TTL).
        ...(config.movesExecutor ? [RegistryInvalidationModule.forRoot()] : []),
        MovesRunnerModule,
      ],
    };
  }
}

/** Nest's and the executor's logs: warnings and errors on stderr (above the progress line), info with --verbose. */
class CliLogger implements LoggerService {
  constructor(
    private readonly print: (line: string) => void,
    private readonly showInfo: boolean,
  ) {}

  private line(level: string, message: unknown, params: unknown[]): void {
    const context = typeof params[params.length - 1] === 'string' ? (params[params.length - 1] as string) : undefined;
    const text = message instanceof Error ? message.message : typeof message === 'string' ? message : JSON.stringify(message);
    this.print(`${level}${context ? ` [${context}]` : ''} ${text}`);
  }

  log(message: unknown, ...params: unknown[]): void {
    if (this.showInfo) this.line('info', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.line('warn', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    // Nest passes (message, stack, context); the stack is noise for an operator.
    this.line('error', message, params.length > 1 ? params.slice(1) : params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.error(message, ...params);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Parsed {
  command: 'move' | 'moves' | 'wait' | 'cancel';
  arg: string;
  toTier?: Tier;
  poolId?: string;
  wait: boolean;
  verbose: boolean;
}

function parse(argv: string[]): Parsed | 'help' {
  let values: { to?: string; pool?: string; wait?: boolean; verbose?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        to: { type: 'string' },
        pool: { type: 'string' },
        wait: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const [command, arg, ...rest] = positionals;
  if (!command) throw new UsageError('a command is required');
  if (!['move', 'moves', 'wait', 'cancel'].includes(command)) throw new UsageError(`unknown command ${command}`);
  if (!arg) throw new UsageError(`${command} needs ${command === 'move' || command === 'moves' ? 'a tenant slug' : 'a move id'}`);
  if (rest.length) throw new UsageError(`unexpected argument ${rest.join(' ')}`);
  const p: Parsed = { command: command as Parsed['command'], arg, wait: Boolean(values.wait), verbose: Boolean(values.verbose) };
  if (command === 'move') {
    if (!values.to) throw new UsageError('move needs --to <tier>');
    if (!TIERS.includes(values.to as Tier)) throw new UsageError(`--to must be one of ${TIERS.join(', ')}`);
    p.toTier = values.to as Tier;
    p.poolId = values.pool;
  } else {
    if (values.to !== undefined || values.pool !== undefined) throw new UsageError(`--to and --pool belong to move, not ${command}`);
  }
  if (command === 'moves' && p.wait) throw new UsageError('--wait belongs to move and cancel');
  if (command === 'wait') p.wait = true;
  if ((command === 'wait' || command === 'cancel') && !UUID.test(arg)) throw new UsageError(`${arg} is not a move id`);
  return p;
}

/** `code: message` of a refused request (an ApiException of the moves service), or undefined. */
function refusal(err: unknown): string | undefined {
  if (!(err instanceof ApiException)) return undefined;
  const body = err.getResponse() as { error?: string; message?: string };
  return `${body.error ?? err.code}: ${body.message ?? err.message}`;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((done) => {
    if (signal?.aborted) return done();
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      done();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      done();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * `npm run tenants -- …` (apps/cli/src/tenants.ts): operators request, follow, list and cancel
 * tenant moves. Returns the exit status. After an interrupted wait (130) the caller should end the
 * process rather than wait for it: this process may hold a move's lease, and ending it is what
 * hands the move to another executor.
 */
export async function runTenantsCli(argv: string[], env: NodeJS.ProcessEnv, io: TenantsCliIo): Promise<number> {
  const out = (s: string) => io.stdout.write(`${s}\n`);
  const err = (s: string) => io.stderr.write(`${s}\n`);

  let args: Parsed | 'help';
  try {
    args = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`${e.message}\n\n${TENANTS_USAGE}`);
    return EXIT.usage;
  }
  if (args === 'help') {
    out(TENANTS_USAGE);
    return EXIT.ok;
  }

  let config: StrataConfig;
  let embedded: { host: string; port: number } | undefined;
  try {
    const db = await resolveCliDatabase(env, io.cwd);
    embedded = db.embedded;
    // The CLI signs no tokens; the rest of the config is validated as for the API.
    config = loadStrataConfig({ AUTH_JWT_SECRET: 'x'.repeat(32), ...db.env });
  } catch (e) {
    err((e as Error).message);
    return e instanceof CliDatabaseError ? EXIT.failed : EXIT.usage;
  }
  // Only a waiting CLI runs moves; otherwise the API or the worker picks the move up.
  config = { ...config, movesExecutor: args.wait };

  let view: MoveProgressView | undefined;
  const logger = new CliLogger((line) => (view ? view.message(line) : err(line)), args.verbose);
  let app: INestApplicationContext;
  try {
    app = await NestFactory.createApplicationContext(TenantsCliModule.forRoot(config), { logger, abortOnError: false });
  } catch (e) {
    const where = embedded ? ` (the embedded PostgreSQL on ${embedded.host}:${embedded.port}: is the API running? start it first with npm start)` : '';
    err(`cannot start: ${(e as Error).message}${where}`);
    return EXIT.failed;
  }

  let abandon = false;
  try {
    const moves = app.get(MovesService);
    const control = app.get<DataSource>(CONTROL_DATA_SOURCE);
    const tenantBySlug = async (slug: string) => {
      const t = await control.getRepository(TenantEntity).findOneBy({ slug });
      if (!t || t.status === 'deleted') throw new ApiException(404, MoveErrorCode.tenantNotFound, `no tenant with slug ${slug}`);
      return t;
    };

    /** Follows a move to its end with the live display; undefined when interrupted. */
    const follow = async (first: TenantMoveView): Promise<TenantMoveView | undefined> => {
      const started = Date.now();
      // Progress on stderr: stdout carries only results (the move id, the outcome), for scripts.
      view = new MoveProgressView(io.stderr);
      let m = first;
      try {
        for (;;) {
          view.update(m, Date.now() - started);
          if (TERMINAL_PHASES.includes(m.phase)) return m;
          await sleep(io.pollMs ?? 250, io.signal);
          if (io.signal?.aborted) return undefined;
          m = await moves.get(m.id);
        }
      } finally {
        view.end();
        view = undefined;
      }
    };

    /** What an interrupted wait leaves behind, and how it goes on. */
    const interrupted = async (id: string): Promise<number> => {
      const m = await moves.get(id).catch(() => undefined);
      const mine = await holdsLease(app, control);
      err(
        `stopped waiting; move ${id} goes on${m ? ` (phase ${m.phase})` : ''}. ` +
          (mine
            ? `This process was running it: its lease runs out within ${Math.round(config.moveLeaseMs / 1000)} s and the API, the worker or 'npm run tenants -- wait ${id}' resumes it where it stood.`
            : `The API or the worker runs it; follow it with 'npm run tenants -- wait ${id}'.`),
      );
      // Ending the process is what hands a held lease over; closing would first finish the move.
      abandon = mine;
      return EXIT.interrupted;
    };

    const outcome = (m: TenantMoveView, wanted: 'done' | 'cancelled'): number => {
      const took = m.finishedAt ? formatElapsed(new Date(m.finishedAt).getTime() - new Date(m.createdAt).getTime()) : '?';
      if (m.phase === 'done') {
        const pause = m.pauseMs === null ? '' : `, writes paused ${m.pauseMs} ms`;
        (wanted === 'done' ? out : err)(`move ${m.id} done in ${took}: the tenant is on ${m.toTier}/${m.toPoolId} (${m.rowsCopied.toLocaleString('en-US')} rows copied${pause})`);
      } else if (m.phase === 'cancelled') {
        (wanted === 'cancelled' ? out : err)(`move ${m.id} cancelled after ${took}: rolled back, the tenant stays on ${m.fromTier}/${m.fromPoolId}`);
      } else {
        const at = [...m.phases].reverse().find((p) => !TERMINAL_PHASES.includes(p.phase))?.phase ?? 'queued';
        err(`move ${m.id} failed in ${at} after ${took}: ${m.error ?? 'no error recorded'}\nrolled back: the tenant stays on ${m.fromTier}/${m.fromPoolId}`);
      }
      return m.phase === wanted ? EXIT.ok : EXIT.failed;
    };

    switch (args.command) {
      case 'move': {
        const tenant = await tenantBySlug(args.arg);
        const requestedBy = `cli:${safeUser()}@${hostname()}`;
        const move = await moves.request(tenant.id, { toTier: args.toTier!, toPoolId: args.poolId }, requestedBy);
        out(move.id);
        err(`move of ${tenant.slug}: ${formatRoute(move)} requested (${move.phase})`);
        if (!args.wait) {
          err(`the API or the worker runs it; follow it with 'npm run tenants -- wait ${move.id}' or 'npm run tenants -- moves ${tenant.slug}'`);
          return EXIT.ok;
        }
        const end = await follow(move);
        return end ? outcome(end, 'done') : await interrupted(move.id);
      }
      case 'moves': {
        const tenant = await tenantBySlug(args.arg);
        const list = await moves.listForTenant(tenant.id);
        out(list.length ? renderMovesTable(list) : `no moves for ${tenant.slug}`);
        return EXIT.ok;
      }
      case 'wait': {
        const m = await moves.get(args.arg);
        const end = await follow(m);
        return end ? outcome(end, 'done') : await interrupted(m.id);
      }
      case 'cancel': {
        const m = await moves.cancel(args.arg);
        if (TERMINAL_PHASES.includes(m.phase)) return outcome(m, 'cancelled');
        out(`cancel requested for move ${m.id} (phase ${m.phase}): it rolls back before its cutover`);
        if (!args.wait) return EXIT.ok;
        const end = await follow(m);
        return end ? outcome(end, 'cancelled') : await interrupted(m.id);
      }
    }
    return EXIT.usage;
  } catch (e) {
    const refused = refusal(e);
    if (refused) {
      err(refused);
      return EXIT.usage;
    }
    err(`error: ${(e as Error)?.message ?? String(e)}`);
    return EXIT.failed;
  } finally {
    if (!abandon) await closeApp(app, config, io, err);
  }
}

/** Whether this process's executor holds the lease of an open move. */
async function holdsLease(app: INestApplicationContext, control: DataSource): Promise<boolean> {
  const executor = app.get(MoveExecutor);
  const rows: unknown[] = await control
    .query(`SELECT id FROM control.tenant_moves WHERE lease_owner = $1 AND phase NOT IN ('done', 'failed', 'cancelled') LIMIT 1`, [executor.owner])
    .catch(() => []);
  return rows.length > 0;
}

/**
 * Closes the app. An executor that claimed another move while this CLI waited finishes it first
 * (closing stops it claiming more); Ctrl-C leaves that move to another executor instead.
 */
async function closeApp(app: INestApplicationContext, config: StrataConfig, io: TenantsCliIo, err: (s: string) => void): Promise<void> {
  if (config.movesExecutor && (await holdsLease(app, app.get<DataSource>(CONTROL_DATA_SOURCE)))) {
    err(`this process claimed another move while waiting and finishes it before exiting (Ctrl-C leaves it to another executor once its lease runs out)`);
  }
  const closing = app.close();
  const signal = io.signal;
  // Already interrupted (and holding no lease): closing is quick, let it finish.
  if (!signal || signal.aborted) return closing;
  await Promise.race([closing, new Promise<void>((done) => signal.addEventListener('abort', () => done(), { once: true }))]);
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
