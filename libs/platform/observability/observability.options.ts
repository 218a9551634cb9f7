import type { DestinationStream, LevelWithSilent } from 'pino';

export const OBSERVABILITY_OPTIONS = Symbol('OBSERVABILITY_OPTIONS');

export interface ObservabilityOptions {
  /** Log level; default `LOG_LEVEL` from the environment, else `info`. Tests pass `silent`. */
  level?: LevelWithSilent;
  /** Where JSON lines go; default stdout. Tests pass a stream to capture lines. */
  destination?: DestinationStream;
  /** Node process metrics (heap, event loop lag, GC) in the same registry; default true. */
  defaultMetrics?: boolean;
}

let processDefaults: ObservabilityOptions = {};

/**
 * Defaults for every later `ObservabilityModule.forRoot()` in this process. nestjs-pino keeps one
 * root logger per process anyway, so this is where a test captures lines of an app whose
 * AppModule already imports the module: call it before the app is built.
 */
export function setObservabilityDefaults(options: ObservabilityOptions): void {
  processDefaults = { ...options };
}

export function resolveObservabilityOptions(options: ObservabilityOptions): ObservabilityOptions {
  return { ...processDefaults, ...options };
}

const LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Validated at startup, like every other setting: a typo must stop the process, not log nothing. */
export function logLevelFrom(env: NodeJS.ProcessEnv = process.env): LevelWithSilent {
  const raw = env.LOG_LEVEL?.trim().toLowerCase();
  if (!raw) return 'info';
  if (!(LEVELS as readonly string[]).includes(raw)) {
    throw new Error(`config: LOG_LEVEL must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(env.LOG_LEVEL)}`);
  }
  return raw as LevelWithSilent;
}
