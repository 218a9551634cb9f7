import { Inject, Injectable } from '@nestjs/common';
import { DataSource, QueryFailedError } from 'typeorm';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, PoolEntity, type AuditActor, type AuditTrail, type TenantStatus, type Tier } from '#strata/control-plane';
import { TierDrivers } from '#strata/tenancy/platform';
import { OnboardingErrorCode as E, onboardingError } from './onboarding.errors';
import { OnboardingExecutor } from './onboarding.executor';
import { DEFAULT_ONBOARDING_STEPS, OnboardingSteps } from './onboarding.steps';
import type { OnboardingOwner, OnboardingStepView } from './onboarding.types';
import { TenantOnboardingsRepository } from './tenant-onboardings.repository';

export interface OnboardingRequest {
  slug: string;
  name: string;
  /** Default: the plan's default tier (control.plans.default_tier). */
  tier?: Tier;
  /** Default: DEFAULT_PLAN. */
  plan?: string;
  /** A registered pool of the tier; default: the tier's default pool. */
  poolId?: string;
  owner?: OnboardingOwner | null;
  /**
   * The steps to run, by name (OnboardingSteps); default DEFAULT_ONBOARDING_STEPS. A restore runs
   * `['create_home', 'migrate', 'restore', 'owner_membership']` with its export in `params`.
   */
  steps?: readonly string[];
  params?: Record<string, unknown>;
  /** Who asked (audit log); default the system. */
  actor?: AuditActor;
}

/** Where an onboarding stands: the tenant's status and, while it has them, its steps. */
export interface OnboardingState {
  status: TenantStatus;
  steps: OnboardingStepView[];
  error: string | null;
  /** It failed because a schema or database of the home's name was already there (left untouched). */
  homeExists: boolean;
}

/** Between two looks at an onboarding another process holds or that is backing off: growing to the cap. */
const SETTLE_POLL_MS = 25;
const SETTLE_POLL_MAX_MS = 250;

/** The plan of a tenant onboarded without one (the plan every tenant had before plans were data). */
export const DEFAULT_PLAN = 'standard';

const sqlStateOf = (err: unknown) => (err instanceof QueryFailedError ? (err as QueryFailedError & { driverError?: { code?: string } }).driverError?.code : undefined);
const isUniqueViolation = (err: unknown) => sqlStateOf(err) === '23505';
// tenants.plan references control.plans (migrations/control/0009).
const isForeignKeyViolation = (err: unknown) => sqlStateOf(err) === '23503';

/**
 * Starts onboardings and waits for them: the one entry point of `POST /admin/tenants` and
 * `POST /signup`. The record (`provisioning`) and its steps are written in one transaction; the
 * steps then run in whichever executor claims them — this process at once, when a caller waits.
 */
@Injectable()
export class OnboardingService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly onboardings: TenantOnboardingsRepository,
    private readonly executor: OnboardingExecutor,
    private readonly drivers: TierDrivers,
    private readonly steps: OnboardingSteps,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
  ) {}

  /** The record, `provisioning`, with its steps pending. 400 invalid_pool, 409 tenant_slug_taken. */
  async start(req: OnboardingRequest): Promise<{ id: string; slug: string }> {
    const plan = req.plan ?? DEFAULT_PLAN;
    const tier = req.tier ?? (await this.defaultTierOf(plan));
    const pools = this.db.getRepository(PoolEntity);
    const pool = req.poolId ? await pools.findOneBy({ id: req.poolId }) : await pools.findOneBy({ kind: tier, isDefault: true });
    if (!pool || pool.kind !== tier) throw onboardingError(E.invalidPool, `no ${tier} pool ${req.poolId ?? '(default)'} is registered`);
    // An unknown step fails here, before anything is written, not half-way through an onboarding.
    for (const name of req.steps ?? []) this.steps.of(name);
    try {
      // The request and its audit entry commit together: no tenant is started unrecorded.
      return await this.db.transaction(async (em) => {
        const started = await this.onboardings.insert(
          { slug: req.slug, name: req.name, tier, poolId: pool.id, plan, ...this.drivers.of(tier).placementFor(req.slug) },
          req.steps ?? DEFAULT_ONBOARDING_STEPS,
          req.owner ?? null,
          req.params ?? {},
          em,
        );
        // A restore (API or CLI) names its export: the record of where the tenant's rows came from.
        const restoredFrom = typeof req.params?.restoreFrom === 'string' ? { restoredFrom: req.params.restoreFrom } : {};
        await this.audit.record(
          {
            action: 'tenant.onboarding_requested',
            tenantId: started.id,
            actor: req.actor ?? { type: 'system' },
            details: { slug: req.slug, tier, poolId: pool.id, plan, steps: req.steps ?? DEFAULT_ONBOARDING_STEPS, ...restoredFrom },
          },
          em,
        );
        return started;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw onboardingError(E.tenantSlugTaken, `slug ${req.slug} is taken`);
      if (isForeignKeyViolation(err)) throw onboardingError(E.invalidPlan, `no plan ${plan}; GET /admin/plans lists them`);
      throw err;
    }
  }

  /** A request that names no tier gets its plan's default one; an unknown plan is 400 invalid_plan here, before anything is written. */
  private async defaultTierOf(plan: string): Promise<Tier> {
    const tier = await this.onboardings.defaultTierOf(plan);
    if (!tier) throw onboardingError(E.invalidPlan, `no plan ${plan}; GET /admin/plans lists them`);
    return tier;
  }

  /** Lets the background executor pick it up (`?async=true`, a signup that stopped waiting). */
  kick(): void {
    this.executor.nudge();
  }

  /**
   * Runs the onboarding here when it can be claimed, and waits until it is no longer
   * `provisioning` or `maxWaitMs` ran out (another process holds it, or a retry's back-off).
   */
  async settle(tenantId: string, maxWaitMs: number): Promise<OnboardingState> {
    const until = Date.now() + maxWaitMs;
    for (let pollMs = SETTLE_POLL_MS; ; pollMs = Math.min(SETTLE_POLL_MAX_MS, pollMs * 2)) {
      await this.executor.runOne(tenantId);
      const state = await this.stateOf(tenantId);
      if (!state || state.status !== 'provisioning' || Date.now() >= until) return state ?? { status: 'deleted', steps: [], error: null, homeExists: false };
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, until - Date.now()))));
    }
  }

  /** The tenant's status and its onboarding's steps; null when there is no such tenant. */
  async stateOf(tenantId: string): Promise<OnboardingState | null> {
    const state = await this.onboardings.stateOf(tenantId);
    if (!state) return null;
    const failed = state.steps.find((s) => s.state === 'failed');
    return { ...state, homeExists: failed?.name === 'create_home' && /already exists/.test(failed.error ?? '') };
  }
}
