import type { ProgressStream } from './move-progress';
import { renderStepLine, renderStepLogLine, StepProgressView, type StepProgress } from './step-progress';

const STEPS = ['jobs', 'files', 'cache', 'retained_homes', 'home', 'control_plane', 'tombstone'];
const at = (done: number, figures: Partial<StepProgress> = {}): StepProgress => ({ label: 'deleting', steps: STEPS, done, current: STEPS[done], ...figures });

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

describe('renderStepLine', () => {
  it('shows the running step as n/N, a bar of the steps done, the percentage and the elapsed time', () => {
    expect(renderStepLine(at(2), 3_000, 100)).toBe(`deleting cache 3/7 [${'█'.repeat(8)}${'░'.repeat(22)}]  28%  0:03`);
  });

  it('shows a full bar and no step once every step is done', () => {
    expect(renderStepLine({ label: 'deleted', steps: STEPS, done: 7 }, 65_000, 100)).toBe(`deleted 7/7 [${'█'.repeat(30)}] 100%  1:05`);
  });

  it("shows a retried step's attempts and error, and fits a narrow terminal", () => {
    const line = renderStepLine(at(4, { attempts: 2, error: 'connection\nrefused' }), 1_000, 60);
    expect(line).toContain('retry 2: connection refused');
    expect(line.length).toBeLessThanOrEqual(59);
  });
});

describe('StepProgressView', () => {
  it('prints a log line per change, not per look, when the output is not a terminal', () => {
    const out = screen(false);
    const view = new StepProgressView(out);
    view.update(at(0), 0);
    view.update(at(0), 500);
    view.update(at(1), 900);
    view.update(at(1, { attempts: 1, error: 'S3 down' }), 1_900);
    view.end();
    expect(out.text).toBe(
      [renderStepLogLine(at(0), 0), renderStepLogLine(at(1), 900), '[0:01]  deleting files 2/7 (14%)  retry 1: S3 down', ''].join('\n'),
    );
  });

  it('redraws one line in place on a terminal, and ends below it', () => {
    const out = screen(true, 100);
    const view = new StepProgressView(out);
    view.update(at(0), 0);
    view.update(at(1), 1_000);
    view.end();
    expect(out.text).toBe(`\r\x1b[2K${renderStepLine(at(0), 0, 100)}\r\x1b[2K${renderStepLine(at(1), 1_000, 100)}\n`);
  });
});
