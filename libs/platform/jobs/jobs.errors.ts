import { ApiException } from '#strata/common';

/** Every error libs/platform/jobs raises that a client may see, with its stable code. */
export const JobsErrorCode = {
  jobsUnavailable: 'jobs_unavailable',
} as const;
export type JobsErrorCode = (typeof JobsErrorCode)[keyof typeof JobsErrorCode];

/**
 * Redis (the job queue) is down or did not answer within REDIS_COMMAND_TIMEOUT_MS: nothing was
 * enqueued. An ApiException, so a request that lets it through answers 503 with Retry-After
 * instead of a 500; callers that keep the work elsewhere (an outbox) catch it and move on.
 */
export class JobsUnavailableError extends ApiException {
  constructor(readonly reason: string) {
    super(503, JobsErrorCode.jobsUnavailable, 'the job queue is unavailable, nothing was enqueued; retry shortly', { 'Retry-After': '5' });
    this.name = 'JobsUnavailableError';
  }
}
