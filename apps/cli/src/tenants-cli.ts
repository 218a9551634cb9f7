import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { Module, type DynamicModule, type INestApplicationContext, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClsModule } from 'nestjs-cls';
import type { DataSource } from 'typeorm';
import { CacheModule, RegistryInvalidationModule } from '#strata/cache';
import { ApiException, loadStrataConfig, StrataConfigModule, type StrataConfig } from '#strata/common';
import { CONTROL_DATA_SOURCE, ControlPlaneModule, TenantEntity, TIERS, type Tier } from '#strata/control-plane';
import { MigratorModule } from '#strata/migrator';
import { ExportExecutor, ExportsRunnerModule, ExportsService, TenantRestorer, TERMINAL_EXPORT_STATES } from '#strata/exports';
import { MoveErrorCode, MoveExecutor, MovesRunnerModule, MovesService, TERMINAL_PHASES, type TenantMoveView } from '#strata/moves';
import { StorageModule } from '#strata/storage';
import { JobsModule } from '#strata/jobs';
import { OnboardingExecutor, OnboardingRunnerModule, OnboardingService, RESTORE_ONBOARDING_STEPS, type OnboardingState } from '#strata/onboarding';
import { DELETION_STEPS, OffboardingErrorCode, OffboardingExecutor, OffboardingModule, OffboardingService, type DeletionReportView } from '#strata/offboarding';
import { SLUG_RULE, TenancyModule } from '#strata/tenancy/platform';
import { CliDatabaseError, resolveCliDatabase } from './cli-database';
import { formatElapsed, formatRoute, MoveProgressView, renderMovesTable, type ProgressStream } from './move-progress';
import { StepProgressView, type StepProgress } from './step-progress';

export const TENANTS_USAGE = `usage: npm run tenants -- <command> [options]

  move <slug> --to <tier> [--pool <id>] [--wait]
                       move the tenant online to tier pool|bridge|silo (that tier's default pool,
                       or --pool <id>); prints the move id. Without --wait it exits at once and
                       the API or the worker runs the move (any process with MOVES_EXECUTOR on).
  moves <slug>         the tenant's moves, newest first
  wait <moveId>        follow a move until it ends (this process runs moves too, as with --wait)
  cancel <moveId> [--wait]
                       roll a move back; possible until its cutover begins
  export <slug> [--wait]
                       export the tenant (JSON Lines per table + files + manifest, a .tar.gz kept
                       in storage); prints the export id. --wait produces it in this process.
  restore --export <id> --slug <new> --tier <tier> [--pool <id>] [--no-wait]
                       restore a done export as a new tenant <new> on tier pool|bridge|silo, with
                       the same row ids and files; refused (export_archive_invalid) when the
                       archive does not match its manifest and record. Prints the new tenant id.
                       Runs the onboarding pipeline (create_home, migrate, restore, …) as
                       POST /admin/tenants {restoreFrom} does: leased, resumable, audited; this
                       process runs its steps with a progress bar. --no-wait: exits at once, the
                       API or the worker runs it (ONBOARDING_EXECUTOR).
  delete <id|slug> [--no-wait]
                       delete the tenant (active, suspended, or failed onboarding) from every store,
                       as DELETE /admin/tenants/:id does (same service, audited); prints its id.
                       This process runs the deletion's steps with a progress bar until its
                       report is done, then prints the report. --no-wait: exits at once, the API
                       runs it (MOVES_EXECUTOR).

  --wait               live progress (phase, rows copied/total, lag, elapsed) until the move ends.
                       This process runs moves meanwhile, so no API or worker is needed.
                       Ctrl-C only stops waiting: the move goes on. If this process was running
                       it, its lease runs out (MOVE_LEASE_MS, 15 s) and the API, the worker or
                       another 'wait' resumes it where it stood.
  --verbose            also print the executor's info logs

Exit status: 0 the move (export, restore, deletion) is done (cancel --wait: cancelled), 1 it failed or was
cancelled, or an error; 2 bad usage or a refused request (printed as <code>: <message>, e.g. move_noop,
tenant_not_found); 130 Ctrl-C (the deletion or restore goes on: its lease runs out and another process resumes it).

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

/** What a command needs beyond the moves runner: the onboarding pipeline (restore), offboarding and every store it clears (delete). */
export interface TenantsCliNeeds {
  onboarding?: boolean;
  offboarding?: boolean;
}

/** What the CLI needs from Nest: config, CLS, control plane, migrator, tenancy and the moves runner. */
@Module({})
export class TenantsCliModule {
  static forRoot(config: StrataConfig, needs: TenantsCliNeeds = {}): DynamicModule {
    // A deletion or a restore this process starts or finishes tells every instance at once (Redis
    // pub/sub; without REDIS_URL the others see it after their registry TTL), as the API does.
    const announces = config.movesExecutor || needs.onboarding || needs.offboarding;
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
        ...(announces ? [RegistryInvalidationModule.forRoot()] : []),
        MovesRunnerModule,
        // Exports and restores read and write archives and files through FILES_DRIVER, as the API does.
        StorageModule.forRoot(),
        ExportsRunnerModule,
        // The same pipeline as POST /admin/tenants (restore), its steps run here by runOne.
        ...(needs.onboarding ? [OnboardingRunnerModule] : []),
        // The stores a deletion clears, wired as in the API: cache, jobs (Redis), files (FILES_DRIVER above).
        ...(needs.offboarding ? [CacheModule.forRoot(), JobsModule.forRoot(), OffboardingModule] : []),
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
  command: 'move' | 'moves' | 'wait' | 'cancel' | 'export' | 'restore' | 'delete';
  arg: string;
  toTier?: Tier;
  poolId?: string;
  exportId?: string;
  slug?: string;
  wait: boolean;
  verbose: boolean;
}

function parse(argv: string[]): Parsed | 'help' {
  let values: { to?: string; pool?: string; wait?: boolean; 'no-wait'?: boolean; verbose?: boolean; help?: boolean; export?: string; slug?: string; tier?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        to: { type: 'string' },
        pool: { type: 'string' },
        export: { type: 'string' },
        slug: { type: 'string' },
        tier: { type: 'string' },
        wait: { type: 'boolean', default: false },
        'no-wait': { type: 'boolean', default: false },
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
  if (!['move', 'moves', 'wait', 'cancel', 'export', 'restore', 'delete'].includes(command)) throw new UsageError(`unknown command ${command}`);
  if (command === 'restore') return parseRestore(values, [arg, ...rest].filter((x) => x !== undefined), Boolean(values.verbose));
  if (values['no-wait'] && command !== 'delete') throw new UsageError(`--no-wait belongs to delete and restore, not ${command}`);
  if (values.export !== undefined || values.slug !== undefined || values.tier !== undefined) throw new UsageError(`--export, --slug and --tier belong to restore, not ${command}`);
  if (!arg) throw new UsageError(`${command} needs ${command === 'delete' ? 'a tenant id or slug' : command === 'move' || command === 'moves' ? 'a tenant slug' : 'a move id'}`);
  if (rest.length) throw new UsageError(`unexpected argument ${rest.join(' ')}`);
  if (command === 'delete') {
    if (values.to !== undefined || values.pool !== undefined) throw new UsageError('--to and --pool belong to move, not delete');
    if (values.wait && values['no-wait']) throw new UsageError('--wait or --no-wait, not both');
    return { command: 'delete', arg, wait: !values['no-wait'], verbose: Boolean(values.verbose) };
  }
  const p: Parsed = { command: command as Parsed['command'], arg, wait: Boolean(values.wait), verbose: Boolean(values.verbose) };
  if (command === 'move') {
    if (values.tier !== undefined) throw new UsageError('move takes --to <tier>');
    if (!values.to) throw new UsageError('move needs --to <tier>');
    if (!TIERS.includes(values.to as Tier)) throw new UsageError(`--to must be one of ${TIERS.join(', ')}`);
    p.toTier = values.to as Tier;
    p.poolId = values.pool;
  } else {
    if (values.to !== undefined || values.pool !== undefined) throw new UsageError(`--to and --pool belong to move, not ${command}`);
  }
  if (command === 'moves' && p.wait) throw new UsageError('--wait belongs to move, cancel and export');
  if (command === 'wait') p.wait = true;
  if ((command === 'wait' || command === 'cancel') && !UUID.test(arg)) throw new UsageError(`${arg} is not a move id`);
  return p;
}

function parseRestore(
  values: { to?: string; pool?: string; wait?: boolean; 'no-wait'?: boolean; export?: string; slug?: string; tier?: string },
  positionals: string[],
  verbose: boolean,
): Parsed {
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals.join(' ')}`);
  if (values.to !== undefined || values.wait) throw new UsageError('restore takes --tier <tier> (and waits unless --no-wait)');
  if (!values.export || !UUID.test(values.export)) throw new UsageError('restore needs --export <export id>');
  if (!values.slug || !SLUG_RULE.test(values.slug)) throw new UsageError('restore needs --slug <new slug> (lower case letters, digits and -)');
  if (!values.tier || !TIERS.includes(values.tier as Tier)) throw new UsageError(`restore needs --tier, one of ${TIERS.join(', ')}`);
  return { command: 'restore', arg: values.slug, exportId: values.export, slug: values.slug, toTier: values.tier as Tier, poolId: values.pool, wait: !values['no-wait'], verbose };
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
  // Only a waiting CLI runs moves; otherwise the API or the worker picks the move up. A waiting
  // export is produced by this process (drained below), so no executor polls either.
  // Deletions and restores this process waits for are run by it directly (drain, runOne), not by
  // background pollers: without waiting it leaves them to the API or the worker.
  config = { ...config, movesExecutor: args.wait && (args.command === 'move' || args.command === 'wait' || args.command === 'cancel'), onboardingExecutor: false };

  let view: MoveProgressView | StepProgressView | undefined;
  const logger = new CliLogger((line) => (view ? view.message(line) : err(line)), args.verbose);
  let app: INestApplicationContext;
  try {
    app = await NestFactory.createApplicationContext(TenantsCliModule.forRoot(config, { onboarding: args.command === 'restore', offboarding: args.command === 'delete' }), {
      logger,
      abortOnError: false,
    });
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

    /** A tenant by slug, whatever its status short of deleted (a failed onboarding's included). */
    const tenantToDelete = async (slug: string) => {
      const t = await control.getRepository(TenantEntity).findOneBy({ slug });
      if (!t || t.status === 'deleted') throw new ApiException(404, OffboardingErrorCode.tenantNotFound, `no tenant with slug ${slug}`);
      return t;
    };

    /**
     * Runs a step machine here (`run`: claim and run what is claimable now) while drawing its
     * progress from `look` every poll, until `ended`; a run that returns early (another process
     * holds it, a retry's back-off) is started again. Undefined when interrupted.
     */
    const followSteps = async <P>(f: { run: () => Promise<unknown>; look: () => Promise<P>; ended: (p: P) => boolean; show: (p: P) => StepProgress; first?: P }): Promise<P | undefined> => {
      const started = Date.now();
      const steps = new StepProgressView(io.stderr);
      view = steps;
      let running: Promise<unknown> | undefined;
      try {
        let p = f.first ?? (await f.look());
        for (;;) {
          steps.update(f.show(p), Date.now() - started);
          if (f.ended(p)) return p;
          // A failure inside a run is the machine's to record and retry; the loop shows it from `look`.
          running ??= f
            .run()
            .catch((e: unknown) => (view ? view.message(`warn ${(e as Error).message}`) : err(`warn ${(e as Error).message}`)))
            .finally(() => (running = undefined));
          // Not a race with the run: one that returns at once (held elsewhere, backing off) is tried again a poll later.
          await sleep(io.pollMs ?? 250, io.signal);
          if (io.signal?.aborted) {
            // A run under way holds a lease: ending the process hands it over (closing would wait for it).
            abandon = running !== undefined;
            return undefined;
          }
          p = await f.look();
        }
      } finally {
        steps.end();
        view = undefined;
        if (!abandon) await running;
      }
    };

    /** An interrupted wait for a deletion or a restore: it goes on. */
    const stopped = (what: string, where: string, leaseMs: number, runners: string): number => {
      err(
        `stopped waiting; ${what} goes on. ` +
          (abandon
            ? `This process was running it: its lease runs out within ${Math.round(leaseMs / 1000)} s and ${runners} resumes it where it stood; follow it with ${where}.`
            : `${runners} runs it; follow it with ${where}.`),
      );
      return EXIT.interrupted;
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
      case 'export': {
        const tenant = await tenantBySlug(args.arg);
        // Not `exports`: compiled to CommonJS, that name would shadow the module's own (EXIT and all).
        const exportsService = app.get(ExportsService);
        const cliOperator = `cli:${safeUser()}@${hostname()}`;
        const requested = await exportsService.request(tenant.id, `operator:${cliOperator}`, { type: 'operator', id: cliOperator });
        out(requested.id);
        if (!args.wait) {
          err(`export of ${tenant.slug} requested; the API or the worker produces it (GET /admin/exports/${requested.id})`);
          return EXIT.ok;
        }
        let e = requested;
        while (!TERMINAL_EXPORT_STATES.includes(e.state)) {
          await app.get(ExportExecutor).drain();
          e = await exportsService.get(e.id);
          if (TERMINAL_EXPORT_STATES.includes(e.state)) break;
          // Another executor holds it (or its retry back-off runs): look again shortly.
          await sleep(io.pollMs ?? 250, io.signal);
          if (io.signal?.aborted) return EXIT.interrupted;
        }
        if (e.state === 'failed') {
          err(`export ${e.id} failed: ${e.error ?? 'no error recorded'}`);
          return EXIT.failed;
        }
        err(`export ${e.id} done: ${e.rowsExported.toLocaleString('en-US')} rows, ${e.filesExported} files, ${e.archiveBytes} bytes (sha256 ${e.archiveSha256})`);
        return EXIT.ok;
      }
      case 'restore': {
        // Verified before anything exists (404 export_not_found, 422 export_archive_invalid …), as the API does.
        const { manifest } = await app.get(TenantRestorer).verify(args.exportId!);
        const onboarding = app.get(OnboardingService);
        const cliOperator = `cli:${safeUser()}@${hostname()}`;
        const started = await onboarding.start({
          slug: args.slug!,
          name: manifest.tenant.name,
          tier: args.toTier!,
          poolId: args.poolId,
          plan: manifest.tenant.plan,
          steps: RESTORE_ONBOARDING_STEPS,
          params: { restoreFrom: args.exportId! },
          actor: { type: 'operator', id: cliOperator },
        });
        out(started.id);
        if (!args.wait) {
          err(`restore of export ${args.exportId} as ${started.slug} requested; the API or the worker runs it (GET /admin/tenants/${started.id})`);
          return EXIT.ok;
        }
        const executor = app.get(OnboardingExecutor);
        const state = await followSteps<OnboardingState>({
          run: () => executor.runOne(started.id),
          look: async () => (await onboarding.stateOf(started.id))!,
          ended: (st) => st.status !== 'provisioning',
          show: (st) => onboardingProgress(st),
        });
        if (!state) return stopped(`restore of export ${args.exportId} as ${started.slug}`, `GET /admin/tenants/${started.id}`, config.onboardingLeaseMs, 'the API or the worker (ONBOARDING_EXECUTOR)');
        if (state.status !== 'active') {
          const failed = state.steps.find((st) => st.state === 'failed');
          err(
            `restore of export ${args.exportId} as ${started.slug} failed${failed ? ` at ${failed.name}` : ''}: ${state.error ?? 'no error recorded'}\n` +
              `tenant ${started.id} is ${state.status} and keeps its slug; remove it with 'npm run tenants -- delete ${started.id}'`,
          );
          return EXIT.failed;
        }
        const tenant = (await control.getRepository(TenantEntity).findOneBy({ id: started.id }))!;
        const rows = manifest.tables.reduce((n, x) => n + x.rows, 0);
        err(
          `export ${args.exportId} restored as ${tenant.slug} on ${tenant.tier}/${tenant.poolId}: ${rows.toLocaleString('en-US')} rows in ${manifest.tables.length} tables, ${manifest.files.length} files`,
        );
        return EXIT.ok;
      }
      case 'delete': {
        const offboarding = app.get(OffboardingService);
        const tenantId = UUID.test(args.arg) ? args.arg : (await tenantToDelete(args.arg)).id;
        const requested = await offboarding.request(tenantId, `cli:${safeUser()}@${hostname()}`);
        out(requested.tenantId);
        if (!args.wait) {
          err(`deletion of ${requested.slug} requested (${requested.status}); the API runs it (MOVES_EXECUTOR): GET /admin/tenants/${tenantId}/deletion-report`);
          return EXIT.ok;
        }
        const executor = app.get(OffboardingExecutor);
        const report = await followSteps<DeletionReportView>({
          run: () => executor.drain(),
          look: () => offboarding.report(tenantId),
          ended: (r) => r.status === 'deleted',
          show: (r) => deletionProgress(r),
          first: requested,
        });
        if (!report) return stopped(`deletion of ${requested.slug}`, `GET /admin/tenants/${tenantId}/deletion-report`, config.moveLeaseMs, 'the API (MOVES_EXECUTOR)');
        const took = report.finishedAt ? formatElapsed(new Date(report.finishedAt).getTime() - new Date(report.requestedAt).getTime()) : '?';
        err(`tenant ${report.slug} (${report.tenantId}) deleted in ${took}; the report (GET /admin/tenants/${tenantId}/deletion-report):`);
        for (const store of report.stores) {
          const removed = Object.entries(store.removed).map(([k, n]) => `${k} ${n}`).join(', ') || 'nothing';
          const kept = typeof store.details?.kept === 'string' ? ` (kept: ${store.details.kept})` : '';
          err(`  ${store.step.padEnd(14)} ${store.store}: ${removed}${kept}`);
        }
        return EXIT.ok;
      }
      case 'cancel': {
        const m = await moves.cancel(args.arg, `cli:${safeUser()}@${hostname()}`);
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

/** A deletion's report as a step display: the steps of DELETION_STEPS before `done`. */
export function deletionProgress(r: DeletionReportView): StepProgress {
  const steps = DELETION_STEPS.filter((st) => st !== 'done');
  const done = r.step === 'done' ? steps.length : steps.indexOf(r.step);
  return { label: r.status, steps, done, current: r.step === 'done' ? undefined : r.step, attempts: r.attempts, error: r.error };
}

/** An onboarding's steps as a step display (a restore: create_home, migrate, restore, …). */
export function onboardingProgress(st: OnboardingState): StepProgress {
  const steps = st.steps.map((x) => x.name);
  const done = st.steps.filter((x) => x.state === 'done').length;
  const current = st.status === 'provisioning' ? st.steps.find((x) => x.state !== 'done') : undefined;
  // An attempt is on record before it runs: more than one means it is being retried.
  const retries = current && current.attempts > 1 ? current.attempts - 1 : 0;
  const label = st.status === 'provisioning' ? 'restoring' : st.status === 'active' ? 'restored' : st.status;
  return { label, steps, done, current: current?.name, attempts: retries, error: retries ? current?.error : null };
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
