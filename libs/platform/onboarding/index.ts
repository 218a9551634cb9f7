// Public API of libs/platform/onboarding (a platform lib: admin, apps).
export { OnboardingModule, OnboardingRunnerModule } from './onboarding.module';
export { OnboardingService, type OnboardingRequest, type OnboardingState } from './onboarding.service';
export {
  OnboardingExecutor,
  OnboardingExecutorKilled,
  ONBOARDING_EXECUTOR_HOOKS,
  type OnboardingExecutorHooks,
  type OnboardingOutcome,
} from './onboarding.executor';
export { OnboardingSteps, DEFAULT_ONBOARDING_STEPS, RESTORE_ONBOARDING_STEPS, type OnboardingStep, type OnboardingStepContext } from './onboarding.steps';
export { OnboardingStepView, type OnboardingOwner } from './onboarding.types';
export { OnboardingErrorCode, onboardingErrors } from './onboarding.errors';
export { SignupDto, SignupView } from './signup.dto';
