import { BATCH_PRIORITY_BASE, MAX_PRIORITY, laneOfPriority, lanePriority } from './tenant-job.lanes';

describe('job lanes', () => {
  it('ranks every interactive position before every batch position, and tenants still take turns within a lane', () => {
    expect(lanePriority('interactive', 1)).toBe(1);
    expect(lanePriority('interactive', 10_000)).toBe(10_000);
    expect(lanePriority('batch', 1)).toBe(BATCH_PRIORITY_BASE + 1);
    expect(lanePriority('interactive', 10 ** 9)).toBeLessThan(lanePriority('batch', 1));
    expect(lanePriority('batch', 2)).toBeGreaterThan(lanePriority('batch', 1));
  });

  it("stays within BullMQ's priority range", () => {
    expect(lanePriority('batch', 10 ** 9)).toBe(MAX_PRIORITY);
    expect(lanePriority('interactive', 0)).toBe(1);
  });

  it('reads the lane back from the priority, so the worker settles the right backlog counter', () => {
    expect(laneOfPriority(lanePriority('batch', 7))).toBe('batch');
    expect(laneOfPriority(lanePriority('interactive', 7))).toBe('interactive');
    // Jobs added before lanes existed carry their position only: interactive.
    expect(laneOfPriority(undefined)).toBe('interactive');
    expect(laneOfPriority(42)).toBe('interactive');
  });
});
