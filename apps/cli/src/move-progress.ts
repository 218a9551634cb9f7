import type { MovePhase, TenantMoveView } from '#strata/moves';

/** The figures of a move the progress display reads (a TenantMoveView has them all). */
export type MoveProgress = Pick<TenantMoveView, 'phase' | 'rowsCopied' | 'rowsTotal' | 'lagRows' | 'cancelRequested'>;

/** The phases a move goes through before it ends, in order (the terminal ones come after). */
const STEPS: readonly MovePhase[] = ['queued', 'provisioning', 'copying', 'catching_up', 'verifying', 'cutover'];
const COPYING = STEPS.indexOf('copying');
const TERMINAL: readonly MovePhase[] = ['done', 'failed', 'cancelled'];
const PHASE_WIDTH = Math.max(...[...STEPS, ...TERMINAL].map((p) => p.length));

const count = (n: number) => Math.max(0, Math.round(n)).toLocaleString('en-US');

/** `0:07`, `12:34`, `1:02:03`. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** `3/6` for a phase on the way, empty for a terminal one. */
function stepOf(phase: MovePhase): string {
  const i = STEPS.indexOf(phase);
  return i < 0 ? '' : `${i + 1}/${STEPS.length}`;
}

/**
 * How much of the copy is done, 0..1, or undefined while nobody knows yet. A tenant with no rows
 * (0/0) counts as fully copied once the move is past copying; before that the fraction is unknown.
 */
export function copiedFraction(m: MoveProgress): number | undefined {
  if (m.rowsTotal > 0) return Math.min(1, Math.max(0, m.rowsCopied / m.rowsTotal));
  const i = STEPS.indexOf(m.phase);
  return i > COPYING || m.phase === 'done' ? 1 : undefined;
}

function percent(fraction: number | undefined): string {
  return fraction === undefined ? '--%' : `${Math.floor(fraction * 100)}%`;
}

/** A bar of `width` cells between brackets; an unknown fraction is an empty bar. */
export function progressBar(fraction: number | undefined, width: number): string {
  const cells = Math.max(1, width);
  const full = fraction === undefined ? 0 : Math.min(cells, Math.floor(fraction * cells));
  return `[${'█'.repeat(full)}${'░'.repeat(cells - full)}]`;
}

/** Lag is meaningful once capture runs (from copying on). */
function lagOf(m: MoveProgress): string | undefined {
  const i = STEPS.indexOf(m.phase);
  return i >= COPYING || m.phase === 'done' ? `lag ${count(m.lagRows)}` : undefined;
}

function rowsOf(m: MoveProgress): string {
  return `${count(m.rowsCopied)}/${count(m.rowsTotal)} rows`;
}

/**
 * One terminal line, redrawn in place: phase (step n/6), a bar of the rows copied, the percentage,
 * rows copied/total, lag rows and the time since the move was requested. Fits `columns`.
 */
export function renderProgressLine(m: MoveProgress, elapsedMs: number, columns = 80): string {
  const fraction = copiedFraction(m);
  const head = `${m.phase.padEnd(PHASE_WIDTH)} ${stepOf(m.phase).padStart(3)}`;
  const tail = [percent(fraction).padStart(4), rowsOf(m), lagOf(m), formatElapsed(elapsedMs), m.cancelRequested && !TERMINAL.includes(m.phase) ? 'cancelling' : undefined]
    .filter((x) => x !== undefined)
    .join('  ');
  // One column spare: a line exactly as wide as the terminal wraps on some of them.
  const room = columns - 1 - head.length - tail.length - 2;
  if (room >= 12) return `${head} ${progressBar(fraction, Math.min(40, room - 2))} ${tail}`;
  const line = `${head} ${tail}`;
  return line.length > columns - 1 ? line.slice(0, Math.max(1, columns - 1)) : line;
}

/** One log line per change for a non-terminal output (a file, a pipe, CI): no bar, no redraw. */
export function renderProgressLogLine(m: MoveProgress, elapsedMs: number): string {
  const step = stepOf(m.phase);
  const fraction = copiedFraction(m);
  const parts = [
    `[${formatElapsed(elapsedMs)}]`,
    step ? `${m.phase} (${step})` : m.phase,
    `${rowsOf(m)} (${percent(fraction)})`,
    lagOf(m),
    m.cancelRequested && !TERMINAL.includes(m.phase) ? 'cancel requested' : undefined,
  ];
  return parts.filter((x) => x !== undefined).join('  ');
}

/** What counts as a change worth a new log line (time alone is not). */
function changeKey(m: MoveProgress): string {
  return [m.phase, m.rowsCopied, m.rowsTotal, m.lagRows, m.cancelRequested].join('|');
}

/** Where the display writes: process.stdout, or a buffer in tests. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const CLEAR_LINE = '\r\x1b[2K';

/**
 * The live display of one move. On a TTY one line is redrawn in place on every update (so the
 * elapsed time ticks); elsewhere a line is printed only when the figures change: at once for a new
 * phase, at most once per `logEveryMs` for rows and lag within a phase (a long copy would
 * otherwise print a line per batch of 5,000 rows).
 */
export class MoveProgressView {
  private last: { m: MoveProgress; elapsedMs: number } | undefined;
  private lastKey: string | undefined;
  private lastLogged: { phase: string; elapsedMs: number } | undefined;
  private drawn = false;

  constructor(
    private readonly out: ProgressStream,
    private readonly logEveryMs = 1000,
  ) {}

  get tty(): boolean {
    return Boolean(this.out.isTTY);
  }

  update(m: MoveProgress, elapsedMs: number): void {
    this.last = { m, elapsedMs };
    if (this.tty) {
      this.out.write(`${CLEAR_LINE}${renderProgressLine(m, elapsedMs, this.out.columns || 80)}`);
      this.drawn = true;
      return;
    }
    const key = changeKey(m);
    if (key === this.lastKey) return;
    const samePhase = this.lastLogged?.phase === m.phase;
    if (samePhase && elapsedMs - this.lastLogged!.elapsedMs < this.logEveryMs) return;
    this.lastKey = key;
    this.lastLogged = { phase: m.phase, elapsedMs };
    this.out.write(`${renderProgressLogLine(m, elapsedMs)}\n`);
  }

  /**
   * Prints a message above the live line (a warning from the executor, say) and redraws the line.
   * `to` is where the message goes (stderr); on a TTY both streams are the same screen.
   */
  message(text: string, to: ProgressStream = this.out): void {
    if (this.tty && this.drawn) this.out.write(CLEAR_LINE);
    to.write(`${text}\n`);
    if (this.tty && this.drawn && this.last) this.out.write(renderProgressLine(this.last.m, this.last.elapsedMs, this.out.columns || 80));
  }

  /** Leaves the last drawn line on screen and moves below it. */
  end(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

type MoveRow = Pick<
  TenantMoveView,
  'id' | 'fromTier' | 'fromPoolId' | 'toTier' | 'toPoolId' | 'phase' | 'rowsCopied' | 'rowsTotal' | 'pauseMs' | 'createdAt' | 'finishedAt' | 'error' | 'cancelRequested'
>;

/** `2026-12-05 12:09:42Z`, or `-`. */
export function formatTime(d: Date | string | null | undefined): string {
  if (!d) return '-';
  const t = new Date(d);
  return Number.isNaN(t.getTime()) ? '-' : `${t.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** `pool/main-pool → silo/main-silo`. */
export function formatRoute(m: Pick<TenantMoveView, 'fromTier' | 'fromPoolId' | 'toTier' | 'toPoolId'>): string {
  return `${m.fromTier}/${m.fromPoolId} → ${m.toTier}/${m.toPoolId}`;
}

/** A tenant's moves as a table (newest first, as given). */
export function renderMovesTable(moves: readonly MoveRow[]): string {
  const header = ['id', 'from → to', 'phase', 'rows', 'pauseMs', 'created', 'finished', 'error'];
  const rows = moves.map((m) => [
    m.id,
    formatRoute(m),
    m.cancelRequested && !TERMINAL.includes(m.phase) ? `${m.phase} (cancelling)` : m.phase,
    `${count(m.rowsCopied)}/${count(m.rowsTotal)}`,
    m.pauseMs === null ? '-' : String(m.pauseMs),
    formatTime(m.createdAt),
    formatTime(m.finishedAt),
    m.error ? m.error.replace(/\s+/g, ' ') : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : i === 3 || i === 4 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
