import { formatElapsed, progressBar, type ProgressStream } from './move-progress';

/**
 * Where a step machine stands (an offboarding, a restore's onboarding): its steps in order, how
 * many are done, the one running, and the last error while a step is retried.
 */
export interface StepProgress {
  /** What is happening, e.g. `deleting`, `restoring`; the final word once it ended (`deleted`, `failed`). */
  label: string;
  steps: readonly string[];
  /** Steps finished, 0..steps.length. */
  done: number;
  /** The step running (or next), undefined once ended. */
  current?: string;
  /** Failed attempts of the current step so far (it is retried). */
  attempts?: number;
  error?: string | null;
}

const fractionOf = (p: StepProgress) => (p.steps.length ? Math.min(1, Math.max(0, p.done / p.steps.length)) : 1);

function stepOf(p: StepProgress): string {
  return p.current ? `${p.current} ${Math.min(p.done + 1, p.steps.length)}/${p.steps.length}` : `${p.done}/${p.steps.length}`;
}

function retryOf(p: StepProgress): string | undefined {
  if (!p.attempts) return undefined;
  return `retry ${p.attempts}${p.error ? `: ${p.error.replace(/\s+/g, ' ')}` : ''}`;
}

/** One terminal line, redrawn in place: label, step n/N, a bar of the steps done, percentage, elapsed, a retry's error. Fits `columns`. */
export function renderStepLine(p: StepProgress, elapsedMs: number, columns = 80): string {
  const head = `${p.label} ${stepOf(p)}`;
  const tail = [`${Math.floor(fractionOf(p) * 100)}%`.padStart(4), formatElapsed(elapsedMs), retryOf(p)].filter((x) => x !== undefined).join('  ');
  // One column spare: a line exactly as wide as the terminal wraps on some of them.
  const room = columns - 1 - head.length - tail.length - 2;
  const line = room >= 12 ? `${head} ${progressBar(fractionOf(p), Math.min(30, room - 2))} ${tail}` : `${head} ${tail}`;
  return line.length > columns - 1 ? line.slice(0, Math.max(1, columns - 1)) : line;
}

/** One log line per change for a non-terminal output (a file, a pipe, CI). */
export function renderStepLogLine(p: StepProgress, elapsedMs: number): string {
  return [`[${formatElapsed(elapsedMs)}]`, `${p.label} ${stepOf(p)} (${Math.floor(fractionOf(p) * 100)}%)`, retryOf(p)].filter((x) => x !== undefined).join('  ');
}

const CLEAR_LINE = '\r\x1b[2K';

/**
 * The live display of a step machine, as MoveProgressView draws a move: on a TTY one line redrawn
 * on every update (the elapsed time ticks); elsewhere a line only when the step, the count done or
 * the retry changes.
 */
export class StepProgressView {
  private lastKey: string | undefined;
  private drawn = false;

  constructor(private readonly out: ProgressStream) {}

  update(p: StepProgress, elapsedMs: number): void {
    if (this.out.isTTY) {
      this.out.write(`${CLEAR_LINE}${renderStepLine(p, elapsedMs, this.out.columns || 80)}`);
      this.drawn = true;
      return;
    }
    const key = [p.label, p.done, p.current, p.attempts ?? 0].join('|');
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.out.write(`${renderStepLogLine(p, elapsedMs)}\n`);
  }

  /** Prints a message (a warning of the executor) on its own line, above the live one. */
  message(text: string, to: ProgressStream = this.out): void {
    if (this.out.isTTY && this.drawn) {
      this.out.write(CLEAR_LINE);
      this.drawn = false;
    }
    to.write(`${text}\n`);
  }

  /** Leaves the last drawn line on screen and moves below it. */
  end(): void {
    if (this.out.isTTY && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
