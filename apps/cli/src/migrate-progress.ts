import type { TargetResult } from '#strata/migrator';
import { formatElapsed, progressBar, type ProgressStream } from './move-progress';

const CLEAR_LINE = '\r\x1b[2K';

/** What a finished target changed, for a log line; `current` targets change nothing. */
function outcome(r: TargetResult): string {
  switch (r.status) {
    case 'migrated':
      return `migrated ${r.before} -> ${r.after} (${r.applied.map((a) => `${a.version} ${a.durationMs}ms`).join(', ')})`;
    case 'failed':
      return `FAILED at ${r.failedVersion ?? '?'}: ${r.error ?? 'failed'}`;
    case 'drifted':
      return `DRIFT: ${(r.drifted ?? []).map((d) => `${d.version}_${d.name}`).join(', ')} changed after it was applied; nothing applied`;
    default:
      return r.status;
  }
}

/**
 * The live display of `migrate up`: how many targets are done of how many, and how fast. On a TTY
 * one line is redrawn after every target (a bar, counts, rate, elapsed, the last target); elsewhere
 * (a file, CI) a line is printed for every target that changed something (migrated, failed,
 * drifted) and, while only current targets go by, a count at most every `heartbeatMs`, so a long run
 * shows it is moving without printing a line per untouched target.
 */
export class FleetProgressView {
  private total = 0;
  private done = 0;
  private readonly counts = new Map<string, number>();
  private startedAt = 0;
  private lastLineAt = 0;
  private lastKey: string | undefined;
  private drawn = false;
  private ticker: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: ProgressStream,
    private readonly now: () => number = Date.now,
    private readonly heartbeatMs = 5000,
    /** TTY: redraw this often while a long target runs, so the elapsed time moves (0: only per target). */
    private readonly tickMs = 1000,
  ) {}

  start(total: number): void {
    this.total = total;
    this.startedAt = this.lastLineAt = this.now();
    if (!this.out.isTTY) {
      this.out.write(`migrating ${total} target(s)\n`);
      return;
    }
    this.draw();
    if (this.tickMs > 0) this.ticker = setInterval(() => this.draw(), this.tickMs).unref();
  }

  targetDone(r: TargetResult): void {
    this.done++;
    this.counts.set(r.status, (this.counts.get(r.status) ?? 0) + 1);
    const elapsed = this.now() - this.startedAt;
    if (this.out.isTTY) {
      this.lastKey = r.target.key;
      this.draw();
      return;
    }
    const position = `[${String(this.done).padStart(String(this.total).length)}/${this.total}]`;
    if (r.status !== 'current') {
      this.out.write(`${position} ${r.target.key} ${outcome(r)}\n`);
      this.lastLineAt = this.now();
    } else if (this.now() - this.lastLineAt >= this.heartbeatMs) {
      this.out.write(`${position} ${this.summary(elapsed)}\n`);
      this.lastLineAt = this.now();
    }
  }

  /** Leaves the last line on screen and moves below it (TTY), before the report is printed. */
  end(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }

  private draw(): void {
    this.out.write(`${CLEAR_LINE}${this.renderLine(this.now() - this.startedAt, this.lastKey)}`);
    this.drawn = true;
  }

  /** `412/1000 [████░░░░] 41%  400 migrated, 10 current, 2 failed  37.5/s  0:11  bridge:acme`, fitted to the terminal. */
  renderLine(elapsedMs: number, last?: string): string {
    const columns = this.out.columns || 80;
    const fraction = this.total ? this.done / this.total : 1;
    const head = `${this.done}/${this.total}`;
    const tail = `${Math.floor(fraction * 100)}%  ${this.summary(elapsedMs)}${last ? `  ${last}` : ''}`;
    // One column spare: a line exactly as wide as the terminal wraps on some of them.
    const room = columns - 1 - head.length - tail.length - 2;
    const line = room >= 12 ? `${head} ${progressBar(fraction, Math.min(30, room - 2))} ${tail}` : `${head} ${tail}`;
    return line.length > columns - 1 ? line.slice(0, Math.max(1, columns - 1)) : line;
  }

  private summary(elapsedMs: number): string {
    const counts = [...this.counts].map(([s, n]) => `${n} ${s}`).join(', ');
    const rate = this.done / Math.max(elapsedMs / 1000, 0.001);
    return `${counts || 'starting'}  ${rate.toFixed(1)}/s  ${formatElapsed(elapsedMs)}`;
  }
}
