// Public API of libs/platform/offboarding: tenant deletion with a report of what each store lost.
export { OffboardingModule } from './offboarding.module';
export { OffboardingService, DELETION_STUCK_AFTER_MS } from './offboarding.service';
export { OffboardingExecutor, OffboardingKilled, OFFBOARDING_EXECUTOR_HOOKS, type OffboardingExecutorHooks } from './offboarding.executor';
export { OffboardingErrorCode, offboardingErrors } from './offboarding.errors';
export { DELETION_STEPS, DeletionReportEntry, DeletionReportView, type DeletionStep } from './tenant-deletion.types';
