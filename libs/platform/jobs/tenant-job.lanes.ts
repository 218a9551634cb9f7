/** BullMQ's highest priority value (2^21 - 1); lower numbers run first. */
export const MAX_PRIORITY = 2 ** 21 - 1;

/**
 * A job's lane, declared by its producer per job kind: `interactive` for work someone is waiting
 * on (webhook deliveries, emails), `batch` for bulk work (imports, exports, sweeps). Every
 * interactive job outranks every batch job on the same queue, so a tenant's 10,000-job import
 * delays nobody's webhook — its own included — by more than the jobs already running.
 */
export type JobLane = 'interactive' | 'batch';
export const JOB_LANES: readonly JobLane[] = ['interactive', 'batch'];

/**
 * Where the batch lane's priorities start: BullMQ runs lower numbers first, so interactive jobs
 * take 1 … BATCH_PRIORITY_BASE − 1 (their position in their tenant's interactive backlog) and
 * batch jobs BATCH_PRIORITY_BASE + their position in their tenant's batch backlog. Within a lane
 * the tenants still take turns (every tenant's 1st before anyone's 2nd).
 */
export const BATCH_PRIORITY_BASE = 2 ** 20;

/** The priority of the job at `position` (1 = next) of its tenant's backlog in `lane`. */
export function lanePriority(lane: JobLane, position: number): number {
  const p = Math.max(position, 1);
  return lane === 'batch' ? Math.min(BATCH_PRIORITY_BASE + p, MAX_PRIORITY) : Math.min(p, BATCH_PRIORITY_BASE - 1);
}

/** The lane a job was added in, read back from its priority (no envelope field needed, old jobs are interactive). */
export function laneOfPriority(priority: number | undefined): JobLane {
  return (priority ?? 0) > BATCH_PRIORITY_BASE ? 'batch' : 'interactive';
}

/**
 * Per-tenant job caps by plan: how many jobs of one tenant a worker runs at once per queue
 * (libs/platform/capacity provides it from the plans; without a provider JOBS_TENANT_CONCURRENCY
 * applies). Called once per job; answers from memory. 0: no cap.
 */
export const JOB_CONCURRENCY_POLICY = Symbol('JOB_CONCURRENCY_POLICY');
export interface JobConcurrencyPolicy {
  jobConcurrencyOf(plan: string | undefined): number;
}
