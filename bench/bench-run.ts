import { closeSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchDatabase } from './bench-database';

/** What a bench's body gets from runBench(): its database, a log file for its children, cleanup hooks. */
export interface BenchRun {
  db: BenchDatabase;
  /** A file descriptor for the children's stdout/stderr, removed after a clean run, kept after a failure. */
  logFd: number;
  logPath: string;
  /** Runs at cleanup (last registered first), before the database is dropped: stop children, close clients. */
  onCleanup(fn: () => Promise<unknown> | unknown): void;
  /** Keeps the children's log after the run (a failed check that is not a throw). */
  keepLog(): void;
  log(msg: string): void;
}

/**
 * The frame every bench that owns a database shares: creates `strata_bench_<rand>`, runs `body`,
 * and whatever happens (a throw, Ctrl-C, SIGTERM) stops what the body registered and drops the
 * database, its silo databases and its role, so a killed bench leaves nothing on the server. Exits
 * with the body's code (1 on a throw, 130 on a signal).
 */
export async function runBench(name: string, body: (run: BenchRun) => Promise<number>, options: { keepLog?: boolean } = {}): Promise<never> {
  const log = (msg: string) => console.log(`[bench:${name}] ${msg}`);
  const db = new BenchDatabase();
  const logPath = join(tmpdir(), `strata-bench-${name}-${db.runId}.log`);
  const logFd = openSync(logPath, 'w');
  const hooks: Array<() => Promise<unknown> | unknown> = [];
  let keepLog = options.keepLog ?? false;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const hook of hooks.reverse()) {
        try {
          await hook();
        } catch (err) {
          console.error(`[bench:${name}] cleanup step failed:`, err);
        }
      }
      try {
        closeSync(logFd);
      } catch {
        // already closed
      }
      await db.drop().then(
        () => log(`dropped ${db.name}, its silo databases and role ${db.appRole}`),
        (err) => console.error(`!! could not drop ${db.name} / ${db.appRole}; drop them by hand:`, err),
      );
      if (!keepLog) rmSync(logPath, { force: true });
      else log(`children's log kept: ${logPath}`);
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      keepLog = true;
      void cleanup().finally(() => process.exit(130));
    });
  }

  let code = 1;
  try {
    log(`creating ${db.name} (role ${db.appRole})`);
    await db.create();
    code = await body({ db, logFd, logPath, onCleanup: (fn) => hooks.push(fn), keepLog: () => (keepLog = true), log });
  } catch (err) {
    keepLog = true;
    console.error(err);
    code = 1;
  } finally {
    await cleanup();
  }
  process.exit(code);
}
