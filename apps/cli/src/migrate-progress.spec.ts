import type { FleetTarget, TargetResult } from '#strata/migrator';
import { FleetProgressView } from './migrate-progress';
import type { ProgressStream } from './move-progress';

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

const target = (slug: string): FleetTarget => ({ key: `bridge:${slug}`, kind: 'bridge', poolId: 'main-bridge', host: '127.0.0.1', port: 5432, database: 'strata', schema: `t_${slug}` });
const result = (key: string, status: TargetResult['status'], extra: Partial<TargetResult> = {}): TargetResult => ({
  target: target(key),
  status,
  before: '0004',
  after: status === 'migrated' ? '0005' : '0004',
  applied: status === 'migrated' ? [{ version: '0005', name: 'x', durationMs: 12 }] : [],
  pending: [],
  durationMs: 12,
  ...extra,
});

/** A clock the test moves. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('FleetProgressView', () => {
  it('on a terminal redraws one line per finished target: count, bar, percentage, outcomes, rate, elapsed, last target', () => {
    const out = screen(true, 120);
    const c = clock();
    const view = new FleetProgressView(out, c.now, 5000, 0);
    view.start(4);
    c.advance(2000);
    view.targetDone(result('acme', 'migrated'));
    c.advance(2000);
    view.targetDone(result('globex', 'failed', { error: 'boom', failedVersion: '0005' }));
    view.end();
    const frames = out.text.split('\r\x1b[2K').filter(Boolean);
    expect(frames).toHaveLength(3);
    expect(frames[0]).toMatch(/^0\/4 \[░+\] 0% {2}starting {2}0\.0\/s {2}0:00$/);
    expect(frames[1]).toMatch(/^1\/4 \[█+░+\] 25% {2}1 migrated {2}0\.5\/s {2}0:02 {2}bridge:acme$/);
    expect(frames[2]).toMatch(/^2\/4 \[█+░+\] 50% {2}1 migrated, 1 failed {2}0\.5\/s {2}0:04 {2}bridge:globex\n$/);
    for (const f of frames) expect(f.trimEnd().length).toBeLessThan(120);
  });

  it('keeps the elapsed time moving on a terminal while a long target runs', async () => {
    const out = screen(true);
    const c = clock();
    const view = new FleetProgressView(out, c.now, 5000, 20);
    view.start(2);
    c.advance(7000);
    await new Promise((r) => setTimeout(r, 60));
    view.end();
    expect(out.text).toMatch(/0\/2 .* 0:07/);
    const frames = out.text.split('\r\x1b[2K').length;
    await new Promise((r) => setTimeout(r, 60));
    // Stopped by end(): nothing more is drawn.
    expect(out.text.split('\r\x1b[2K').length).toBe(frames);
  });

  it('fits a narrow terminal by leaving the bar out', () => {
    const view = new FleetProgressView(screen(true, 40), () => 0, 5000, 0);
    view.start(1000);
    expect(view.renderLine(1000).length).toBeLessThanOrEqual(39);
    expect(view.renderLine(1000)).not.toContain('[');
  });

  it('elsewhere prints a numbered line per target that changed something, and for untouched targets only a count now and then', () => {
    const out = screen(false);
    const c = clock();
    const view = new FleetProgressView(out, c.now, 5000);
    view.start(12);
    view.targetDone(result('a', 'migrated'));
    for (let i = 0; i < 9; i++) {
      c.advance(1000);
      view.targetDone(result(`c${i}`, 'current'));
    }
    view.targetDone(result('d', 'drifted', { drifted: [{ version: '0002', name: 'files', appliedChecksum: 'a', fileChecksum: 'b' }] }));
    view.targetDone(result('f', 'failed', { error: 'relation "x" does not exist', failedVersion: '0005' }));
    view.end();
    expect(out.text.split('\n').filter(Boolean)).toEqual([
      'migrating 12 target(s)',
      '[ 1/12] bridge:a migrated 0004 -> 0005 (0005 12ms)',
      expect.stringMatching(/^\[ 6\/12\] 1 migrated, 5 current {2}1\.2\/s {2}0:05$/),
      '[11/12] bridge:d DRIFT: 0002_files changed after it was applied; nothing applied',
      '[12/12] bridge:f FAILED at 0005: relation "x" does not exist',
    ]);
  });
});
