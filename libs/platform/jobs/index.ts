// Public API of libs/platform/jobs: tenant-enveloped BullMQ jobs, the system tenant, per-tenant fairness.
export { JobsModule } from './jobs.module';
export { JOBS_OPTIONS, DEFAULT_JOBS_PREFIX, DEFAULT_PARK_DELAY_MS, redisOptionsFromUrl, reconnectDelay, type JobsModuleOptions, type ResolvedJobsOptions } from './jobs.options';
export { TenantJobProducer, type TenantJobOptions } from './tenant-job.producer';
export { TenantWorkerHost } from './tenant-worker.host';
export { TenantJobRunner } from './tenant-job.runner';
export { parseTenantEnvelope, parseTraceCarrier, envelopeFromScope, TRACE_CARRIER_LIMITS, type TenantEnvelope, type TenantJobData, type JobScope } from './tenant-job.envelope';
export { SYSTEM_TENANT, SYSTEM_TENANT_ID, SYSTEM_TENANT_LABEL, SystemTenantRunner, isSystemScope } from './system-tenant.scope';
export { TenantBacklog, JOBS_REDIS, MAX_PRIORITY } from './tenant-backlog.counter';
export { QueueDepthPublisher } from './queue-depth.publisher';
export { QueueConnections, queueConnectionName, workerConnectionName, jobsConnectionName } from './queue-connections.watcher';
export { TenantQueuedJobs, type TenantJobsPurge } from './tenant-queued.jobs';
export { JobsUnavailableError, JobsErrorCode } from './jobs.errors';
export { JOB_LANES, BATCH_PRIORITY_BASE, JOB_CONCURRENCY_POLICY, lanePriority, laneOfPriority, type JobLane, type JobConcurrencyPolicy } from './tenant-job.lanes';
