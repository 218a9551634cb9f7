import { Module } from '@nestjs/common';
import { AuditLogModule } from '#strata/audit';
import { OnboardingExecutor } from './onboarding.executor';
import { OnboardingService } from './onboarding.service';
import { OnboardingSteps } from './onboarding.steps';
import { SignupController, SignupGate } from './signup.controller';
import { SignupRateLimiter } from './signup.rate-limiter';
import { SignupService } from './signup.service';
import { TenantOnboardingsRepository } from './tenant-onboardings.repository';

const RUNNER = [TenantOnboardingsRepository, OnboardingSteps, OnboardingExecutor, OnboardingService];

/** Onboarding for the API: the pipeline, its executor, and self-service signup (`POST /signup`). */
@Module({
  imports: [AuditLogModule],
  controllers: [SignupController],
  providers: [...RUNNER, SignupService, SignupGate, SignupRateLimiter],
  exports: [OnboardingService, OnboardingExecutor, OnboardingSteps],
})
export class OnboardingModule {}

/** The same without HTTP routes: the worker runs onboardings but serves no API. */
@Module({
  imports: [AuditLogModule],
  providers: RUNNER,
  exports: [OnboardingService, OnboardingExecutor, OnboardingSteps],
})
export class OnboardingRunnerModule {}
