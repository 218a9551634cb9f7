import { DEFAULT_JOBS_PREFIX, jobsPrefixFrom, reconnectDelay, redisOptionsFromUrl, resolveJobsOptions } from './jobs.options';

describe('jobs options', () => {
  it('uses JOBS_PREFIX for every process, so the API and the worker meet on the same keys', () => {
    expect(jobsPrefixFrom({ JOBS_PREFIX: 'staging' })).toBe('staging');
    expect(jobsPrefixFrom({})).toBe(DEFAULT_JOBS_PREFIX);
    expect(jobsPrefixFrom({ JOBS_PREFIX: '  ' })).toBe(DEFAULT_JOBS_PREFIX);
  });

  it('refuses a JOBS_PREFIX that would not make clean Redis keys', () => {
    expect(() => jobsPrefixFrom({ JOBS_PREFIX: 'has space' })).toThrow(/config: JOBS_PREFIX must match/);
    expect(() => jobsPrefixFrom({ JOBS_PREFIX: 'x'.repeat(65) })).toThrow(/config: JOBS_PREFIX/);
  });

  it('lets an explicit prefix win over the environment (tests isolate their queues this way)', () => {
    expect(resolveJobsOptions({ prefix: 'test-abc' }, undefined).prefix).toBe('test-abc');
  });

  it('reconnects BullMQ connections at most 2 s apart, so queues and workers are back soon after Redis is', () => {
    expect([1, 5, 20, 1000].map(reconnectDelay)).toEqual([100, 500, 2000, 2000]);
    expect(redisOptionsFromUrl('redis://127.0.0.1:6379').retryStrategy).toBe(reconnectDelay);
    expect(resolveJobsOptions({ connection: { host: '127.0.0.1' } }, undefined).connection.retryStrategy).toBe(reconnectDelay);
  });
});
