import { ApiProperty, ApiSchema } from '@nestjs/swagger';

/** What one step of an onboarding is doing; `failed` only on the step that gave up. */
export const STEP_STATES = ['pending', 'running', 'done', 'failed'] as const;
export type StepState = (typeof STEP_STATES)[number];

/** One entry of control.tenant_onboardings.steps, as `GET /admin/tenants/:id` shows it. */
@ApiSchema({ name: 'OnboardingStep' })
export class OnboardingStepView {
  @ApiProperty({ example: 'create_home', description: 'the step (create_home, migrate, seed_defaults, owner_membership …)' }) name: string;
  @ApiProperty({ enum: STEP_STATES }) state: StepState;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'attempts so far (a failed attempt is retried with back-off)' }) attempts: number;
  @ApiProperty({ type: String, nullable: true, description: "the last attempt's error" }) error: string | null;
}

/** A row of control.tenant_onboardings. */
export interface OnboardingRecord {
  tenantId: string;
  steps: OnboardingStepView[];
  ownerEmail: string | null;
  ownerPasswordHash: string | null;
  /** What steps need beyond the tenant record (a restore step: which export), as the request gave it. */
  params: Record<string, unknown>;
  homeCreated: boolean;
  error: string | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  createdAt: Date;
  finishedAt: Date | null;
}

/** The first owner of a new tenant: signup's email and password hash (never the password). */
export interface OnboardingOwner {
  email: string;
  passwordHash: string;
}

/** The statuses a tenant shows while and after it is onboarded. */
export const TENANT_STATUSES_ON_THE_WIRE = ['provisioning', 'active', 'failed'] as const;
