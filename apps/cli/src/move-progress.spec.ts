import {
  copiedFraction,
  formatElapsed,
  formatTime,
  MoveProgressView,
  progressBar,
  renderMovesTable,
  renderProgressLine,
  renderProgressLogLine,
  type MoveProgress,
  type ProgressStream,
} from './move-progress';

const at = (phase: MoveProgress['phase'], figures: Partial<MoveProgress> = {}): MoveProgress => ({
  phase,
  rowsCopied: 0,
  rowsTotal: 0,
  lagRows: 0,
  cancelRequested: false,
  ...figures,
});

/** A stream that records what was written. */
function screen(isTTY: boolean, columns = 100): ProgressStream & { text: string } {
  return {
    isTTY,
    columns,
    text: '',
    write(chunk: string) {
      this.text += chunk;
      return true;
    },
  };
}

describe('formatElapsed', () => {
  it('is m:ss under an hour and h:mm:ss above', () => {
    expect(formatElapsed(0)).toBe('0:00');
    expect(formatElapsed(7_900)).toBe('0:07');
    expect(formatElapsed(754_000)).toBe('12:34');
    expect(formatElapsed(3_723_000)).toBe('1:02:03');
    expect(formatElapsed(-5)).toBe('0:00');
  });
});

describe('progressBar', () => {
  it('fills the share of its cells, never more than all of them', () => {
    expect(progressBar(0, 10)).toBe(`[${'░'.repeat(10)}]`);
    expect(progressBar(0.5, 10)).toBe(`[${'█'.repeat(5)}${'░'.repeat(5)}]`);
    expect(progressBar(0.99, 10)).toBe(`[${'█'.repeat(9)}░]`);
    expect(progressBar(1, 10)).toBe(`[${'█'.repeat(10)}]`);
    expect(progressBar(3, 4)).toBe('[████]');
  });

  it('is empty while the fraction is unknown', () => {
    expect(progressBar(undefined, 6)).toBe('[░░░░░░]');
  });
});

describe('copiedFraction', () => {
  it('is rows copied over the total, capped at 1', () => {
    expect(copiedFraction(at('copying', { rowsCopied: 25, rowsTotal: 100 }))).toBe(0.25);
    expect(copiedFraction(at('catching_up', { rowsCopied: 120, rowsTotal: 100 }))).toBe(1);
  });

  it('with 0/0 rows: unknown up to copying, complete after it (an empty tenant)', () => {
    expect(copiedFraction(at('queued'))).toBeUndefined();
    expect(copiedFraction(at('provisioning'))).toBeUndefined();
    expect(copiedFraction(at('copying'))).toBeUndefined();
    expect(copiedFraction(at('catching_up'))).toBe(1);
    expect(copiedFraction(at('cutover'))).toBe(1);
    expect(copiedFraction(at('done'))).toBe(1);
    expect(copiedFraction(at('failed'))).toBeUndefined();
  });
});

describe('renderProgressLine (a TTY, redrawn in place)', () => {
  it('shows the phase with its step, a bar, the percentage, rows, lag and elapsed time', () => {
    const line = renderProgressLine(at('copying', { rowsCopied: 52_000, rowsTotal: 100_000, lagRows: 120 }), 12_000, 100);
    expect(line).toMatch(/^copying\s+3\/6 \[█+░+\]\s+52%  52,000\/100,000 rows  lag 120  0:12$/);
    expect(line.length).toBeLessThan(100);
  });

  it('every phase on the way has its step; a terminal one has none', () => {
    const steps = ['queued', 'provisioning', 'copying', 'catching_up', 'verifying', 'cutover'] as const;
    steps.forEach((p, i) => expect(renderProgressLine(at(p), 0)).toMatch(new RegExp(`^${p}\\s+${i + 1}/6 `)));
    expect(renderProgressLine(at('done', { rowsCopied: 10, rowsTotal: 10 }), 0)).toMatch(/^done\s+\[█+\] 100%/);
  });

  it('0/0 rows before the copy: an empty bar and --%, and no lag yet', () => {
    const line = renderProgressLine(at('provisioning'), 1000);
    expect(line).toMatch(/\[░+\]  --%  0\/0 rows  0:01$/);
    expect(line).not.toMatch(/lag/);
  });

  it('0/0 rows after the copy: a full bar at 100%', () => {
    expect(renderProgressLine(at('verifying'), 0)).toMatch(/\[█+\] 100%  0\/0 rows  lag 0  0:00$/);
  });

  it('lag shows from copying on, with thousands separators', () => {
    expect(renderProgressLine(at('catching_up', { rowsCopied: 5, rowsTotal: 5, lagRows: 12_345 }), 0)).toMatch(/lag 12,345/);
  });

  it('a requested cancel is shown until the move ends', () => {
    expect(renderProgressLine(at('copying', { cancelRequested: true }), 0)).toMatch(/cancelling$/);
    expect(renderProgressLine(at('cancelled', { cancelRequested: true }), 0)).not.toMatch(/cancelling/);
  });

  it('fits the terminal: a narrower bar, then no bar, then a cut line', () => {
    const m = at('copying', { rowsCopied: 1_234_567, rowsTotal: 9_876_543, lagRows: 77 });
    for (const columns of [120, 80, 70, 60, 40, 20]) {
      expect(renderProgressLine(m, 3_600_000, columns).length).toBeLessThanOrEqual(columns - 1);
    }
    expect(renderProgressLine(m, 0, 120)).toMatch(/\[█{4}░{36}\]/);
    expect(renderProgressLine(m, 0, 60)).not.toMatch(/\[/);
  });
});

describe('renderProgressLogLine (no TTY)', () => {
  it('one plain line: elapsed, phase (step), rows (percent), lag', () => {
    expect(renderProgressLogLine(at('copying', { rowsCopied: 5_000, rowsTotal: 20_000, lagRows: 3 }), 65_000)).toBe(
      '[1:05]  copying (3/6)  5,000/20,000 rows (25%)  lag 3',
    );
    expect(renderProgressLogLine(at('queued'), 0)).toBe('[0:00]  queued (1/6)  0/0 rows (--%)');
    expect(renderProgressLogLine(at('done'), 2000)).toBe('[0:02]  done  0/0 rows (100%)  lag 0');
    expect(renderProgressLogLine(at('verifying', { cancelRequested: true }), 0)).toMatch(/cancel requested$/);
  });
});

describe('MoveProgressView', () => {
  it('on a TTY redraws one line in place on every update, then leaves it on screen', () => {
    const s = screen(true, 100);
    const view = new MoveProgressView(s);
    view.update(at('queued'), 0);
    view.update(at('queued'), 1000);
    view.update(at('copying', { rowsCopied: 1, rowsTotal: 2 }), 2000);
    view.end();
    const frames = s.text.split('\r\x1b[2K').filter(Boolean);
    expect(frames).toHaveLength(3);
    expect(frames[1]).toMatch(/^queued .* 0:01$/);
    expect(frames[2]).toMatch(/^copying .*50%.* 0:02\n$/);
    expect(s.text.match(/\n/g)).toHaveLength(1);
  });

  it('without a TTY prints a line per change only (elapsed time alone is no change)', () => {
    const s = screen(false);
    const view = new MoveProgressView(s, 0);
    view.update(at('queued'), 0);
    view.update(at('queued'), 1000);
    view.update(at('provisioning'), 1500);
    view.update(at('copying', { rowsTotal: 10_000 }), 2000);
    view.update(at('copying', { rowsTotal: 10_000 }), 2500);
    view.update(at('copying', { rowsCopied: 5_000, rowsTotal: 10_000 }), 3000);
    view.update(at('catching_up', { rowsCopied: 10_000, rowsTotal: 10_000, lagRows: 40 }), 4000);
    view.update(at('done', { rowsCopied: 10_000, rowsTotal: 10_000 }), 5000);
    view.end();
    expect(s.text).not.toMatch(/\r|\x1b/);
    expect(s.text.trimEnd().split('\n')).toEqual([
      '[0:00]  queued (1/6)  0/0 rows (--%)',
      '[0:01]  provisioning (2/6)  0/0 rows (--%)',
      '[0:02]  copying (3/6)  0/10,000 rows (0%)  lag 0',
      '[0:03]  copying (3/6)  5,000/10,000 rows (50%)  lag 0',
      '[0:04]  catching_up (4/6)  10,000/10,000 rows (100%)  lag 40',
      '[0:05]  done  10,000/10,000 rows (100%)  lag 0',
    ]);
  });

  it('without a TTY, figures within one phase print at most once per interval; a new phase and the end at once', () => {
    const s = screen(false);
    const view = new MoveProgressView(s, 1000);
    view.update(at('copying', { rowsTotal: 100_000 }), 0);
    for (let i = 1; i <= 20; i++) view.update(at('copying', { rowsCopied: i * 5000, rowsTotal: 100_000 }), i * 100);
    view.update(at('catching_up', { rowsCopied: 100_000, rowsTotal: 100_000, lagRows: 900 }), 2050);
    view.update(at('catching_up', { rowsCopied: 100_000, rowsTotal: 100_000, lagRows: 150 }), 2100);
    view.update(at('done', { rowsCopied: 100_000, rowsTotal: 100_000 }), 2200);
    expect(s.text.trimEnd().split('\n')).toEqual([
      '[0:00]  copying (3/6)  0/100,000 rows (0%)  lag 0',
      '[0:01]  copying (3/6)  50,000/100,000 rows (50%)  lag 0',
      '[0:02]  copying (3/6)  100,000/100,000 rows (100%)  lag 0',
      '[0:02]  catching_up (4/6)  100,000/100,000 rows (100%)  lag 900',
      '[0:02]  done  100,000/100,000 rows (100%)  lag 0',
    ]);
  });

  it('a message goes above the live line, which is drawn again', () => {
    const s = screen(true);
    const view = new MoveProgressView(s);
    view.update(at('copying', { rowsTotal: 4 }), 0);
    view.message('warn [MoveExecutor] retrying');
    expect(s.text).toMatch(/copying[^\n]*\r\x1b\[2Kwarn \[MoveExecutor\] retrying\ncopying /);
  });

  it('a message without a TTY is just a line', () => {
    const s = screen(false);
    new MoveProgressView(s).message('hello');
    expect(s.text).toBe('hello\n');
  });
});

describe('renderMovesTable', () => {
  const base = {
    fromTier: 'pool' as const,
    fromPoolId: 'main-pool',
    toTier: 'silo' as const,
    toPoolId: 'main-silo',
    rowsCopied: 1200,
    rowsTotal: 1200,
    cancelRequested: false,
  };

  it('one aligned row per move: id, route, phase, rows, pause, times, error', () => {
    const table = renderMovesTable([
      { ...base, id: '22222222-2222-2222-2222-222222222222', phase: 'failed', pauseMs: null, createdAt: new Date('2026-12-05T12:10:00Z'), finishedAt: new Date('2026-12-05T12:10:03Z'), error: 'verification failed on\ninvoices' },
      { ...base, id: '11111111-1111-1111-1111-111111111111', phase: 'done', pauseMs: 35, createdAt: new Date('2026-12-05T12:00:00Z'), finishedAt: new Date('2026-12-05T12:00:09Z'), error: null },
      { ...base, id: '33333333-3333-3333-3333-333333333333', phase: 'copying', cancelRequested: true, pauseMs: null, createdAt: new Date('2026-12-05T12:20:00Z'), finishedAt: null, error: null },
    ]);
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^id\s+from → to\s+phase\s+rows\s+pauseMs\s+created\s+finished\s+error$/);
    expect(lines[1]).toMatch(/^2{8}-.* pool\/main-pool → silo\/main-silo\s+failed\s+1,200\/1,200\s+-\s+2026-12-05 12:10:00Z\s+2026-12-05 12:10:03Z\s+verification failed on invoices$/);
    expect(lines[2]).toMatch(/done\s+1,200\/1,200\s+35\s+2026-12-05 12:00:00Z\s+2026-12-05 12:00:09Z$/);
    expect(lines[3]).toMatch(/copying \(cancelling\)\s+1,200\/1,200\s+-\s+2026-12-05 12:20:00Z\s+-$/);
    // Columns line up: the route starts at the same offset on every line.
    expect(new Set(lines.map((l) => l.indexOf(l.startsWith('id') ? 'from' : 'pool/')))).toEqual(new Set([38]));
  });

  it('formatTime takes dates and ISO strings (JSON) and shows a dash for none', () => {
    expect(formatTime('2026-12-05T12:09:42.123Z')).toBe('2026-12-05 12:09:42Z');
    expect(formatTime(null)).toBe('-');
  });
});
