import { Inject, Injectable, Optional } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { LeasedExecutor, LeaseKeeper, LeaseLost } from '#strata/leases';
import {
  AUDIT_LOG,
  CONTROL_DATA_SOURCE,
  PoolEntity,
  TENANT_CHANGE_PUBLISHER,
  TenantEntity,
  TenantRegistry,
  type AuditTrail,
  type TenantChangePublisher,
} from '#strata/control-plane';
import { homeClaimOf, TENANT_SCHEMA_VERSION, TenantHomeExistsError, TierDrivers } from '#strata/tenancy/platform';
import { OnboardingSteps, type OnboardingStepContext } from './onboarding.steps';
import type { OnboardingRecord, OnboardingStepView } from './onboarding.types';
import { TenantOnboardingsRepository } from './tenant-onboardings.repository';

/** Thrown by a test hook: the executor drops the onboarding on the spot, as if its process died (lease kept, nothing cleaned). */
export class OnboardingExecutorKilled extends Error {}

export interface OnboardingExecutorHooks {
  /** Before each attempt of a step; a test throws here to fail the step, or OnboardingExecutorKilled to "crash". */
  beforeStep?(step: string, tenantId: string): void | Promise<void>;
}
export const ONBOARDING_EXECUTOR_HOOKS = Symbol('ONBOARDING_EXECUTOR_HOOKS');

const POLL_MS = 500;

/** What an executor run ended in, for the caller that waits (POST /admin/tenants, signup). */
export type OnboardingOutcome = 'active' | 'failed' | 'retrying' | 'abandoned';

/**
 * Runs onboardings. Every API and worker process has one (ONBOARDING_EXECUTOR, on by default): it
 * claims an open onboarding with a lease in control.tenant_onboardings, renews it while it works,
 * and runs the steps not yet done, in the order the row lists them. A process that dies leaves its
 * lease to run out and the next executor resumes at the step it stood at (every step is safe to
 * run again). A failed attempt is retried with back-off; after ONBOARDING_MAX_ATTEMPTS the
 * tenant ends `failed` with the step's error, and only what this onboarding created is removed.
 */
@Injectable()
export class OnboardingExecutor extends LeasedExecutor {
  constructor(
    private readonly onboardings: TenantOnboardingsRepository,
    private readonly steps: OnboardingSteps,
    private readonly drivers: TierDrivers,
    private readonly registry: TenantRegistry,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(TENANT_SCHEMA_VERSION) private readonly schemaVersion: string,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly changes?: TenantChangePublisher,
    @Optional() @Inject(ONBOARDING_EXECUTOR_HOOKS) private readonly hooks?: OnboardingExecutorHooks,
  ) {
    super('onboarding executor', 'OnboardingExecutor', POLL_MS);
  }

  protected polls(): boolean {
    return this.config.onboardingExecutor;
  }

  /** Claims and runs open onboardings until none is claimable (tests call it directly). */
  async drain(): Promise<void> {
    await this.poll.drain(() => this.onboardings.claim(this.owner, this.config.onboardingLeaseMs), (claimed) => this.execute(claimed));
  }

  /** Claims and runs `tenantId`'s onboarding if it is claimable now; null when it is not (held, backing off, finished). */
  async runOne(tenantId: string): Promise<OnboardingOutcome | null> {
    if (this.poll.stopped) return null;
    const claimed = await this.onboardings.claim(this.owner, this.config.onboardingLeaseMs, tenantId);
    return claimed ? this.execute(claimed) : null;
  }

  /** Runs one claimed onboarding as far as it goes. */
  async execute(claimed: OnboardingRecord): Promise<OnboardingOutcome> {
    const tenantId = claimed.tenantId;
    const lease = LeaseKeeper.start({ leaseMs: this.config.onboardingLeaseMs, renew: () => this.onboardings.renew(tenantId, this.owner, this.config.onboardingLeaseMs) });

    const steps: OnboardingStepView[] = claimed.steps.map((s) => ({ ...s }));
    let homeCreated = claimed.homeCreated;
    let current: OnboardingStepView | undefined;
    let ctx: OnboardingStepContext | undefined;
    try {
      const tenant = await this.control.getRepository(TenantEntity).findOneByOrFail({ id: tenantId });
      // Through the registry's cache: a pool's placement fields do not change under a tenant.
      const pool = await this.registry.findPool(tenant.poolId);
      if (!pool) throw new Error(`pool ${tenant.poolId} is not registered`);
      const driver = this.drivers.of(tenant.tier);
      ctx = {
        tenant,
        pool,
        driver,
        home: driver.homeOf(tenant, pool),
        onboarding: claimed,
        claim: homeClaimOf(tenant.id),
        homeCreated: () => (homeCreated = true),
      };
      for (const step of steps) {
        if (step.state === 'done') continue;
        current = step;
        lease.assert();
        step.state = 'running';
        step.attempts += 1;
        // The attempt is on record before it runs: a crash inside it still counts towards the limit.
        if (!(await this.onboardings.saveSteps(tenantId, this.owner, steps, homeCreated))) throw new LeaseLost();
        await this.hooks?.beforeStep?.(step.name, tenantId);
        await this.steps.of(step.name).run(ctx);
        step.state = 'done';
        step.error = null;
      }
      current = undefined;
      lease.assert();
      // The durable end, in one commit: the tenant reachable, its audit entry (who asked is in
      // `tenant.onboarding_requested`; this says when it became reachable) and the pool's version.
      // Its WAL flush also makes every checkpoint of the steps durable (CHECKPOINT_COMMIT).
      await this.control.transaction(async (em) => {
        if (!(await this.onboardings.finish(tenantId, this.owner, steps, { status: 'active', schemaVersion: this.schemaVersion }, em))) throw new LeaseLost();
        await this.audit.record({ action: 'tenant.onboarded', tenantId, actor: { type: 'system' }, details: { slug: tenant.slug, tier: tenant.tier, poolId: tenant.poolId } }, em);
        // Provisioned at the version this release ships; pool tenants follow their pool's shared schema.
        if (tenant.tier === 'pool' && pool.schemaVersion < this.schemaVersion) {
          await em.getRepository(PoolEntity).update({ id: pool.id }, { schemaVersion: this.schemaVersion });
        }
      });
      await this.announce(tenant);
      return 'active';
    } catch (err) {
      if (err instanceof OnboardingExecutorKilled || err instanceof LeaseLost) {
        this.logger.warn(`onboarding of ${tenantId}: ${err instanceof LeaseLost ? 'lease lost' : 'executor stopped'}; another executor resumes it`);
        return 'abandoned';
      }
      return await this.onFailure(tenantId, steps, current, homeCreated, ctx, err);
    } finally {
      lease.stop();
    }
  }

  private async onFailure(
    tenantId: string,
    steps: OnboardingStepView[],
    step: OnboardingStepView | undefined,
    homeCreated: boolean,
    ctx: OnboardingStepContext | undefined,
    err: unknown,
  ): Promise<OnboardingOutcome> {
    const message = (err as Error).message ?? String(err);
    if (!step || !ctx) {
      // Outside any step (loading the tenant, the final write): nothing of the tenant's is wrong,
      // so no attempt is counted; give it back for a later claim.
      this.logger.warn(`onboarding of ${tenantId}: ${message}; retrying later`);
      await this.onboardings.release(tenantId, this.owner, steps, homeCreated, this.config.onboardingRetryBaseMs).catch(() => undefined);
      return 'retrying';
    }
    // No retry makes someone else's schema or database ours: give up at once, touching nothing.
    const fatal = err instanceof TenantHomeExistsError;
    step.error = message;
    step.state = fatal || step.attempts >= this.config.onboardingMaxAttempts ? 'failed' : 'pending';
    if (step.state === 'pending') {
      const delayMs = this.config.onboardingRetryBaseMs * 2 ** (step.attempts - 1);
      this.logger.warn(`onboarding of ${tenantId}: step ${step.name} failed (attempt ${step.attempts}), retrying in ${delayMs} ms: ${message}`);
      await this.onboardings.release(tenantId, this.owner, steps, homeCreated, delayMs);
      this.nudge(delayMs);
      return 'retrying';
    }
    this.logger.error(`onboarding of ${tenantId} failed at ${step.name}: ${message}`);
    // Only what this onboarding recorded as its own: an exclusive home it created (and marked), or
    // the tenant's rows in a shared one. A home that was there before stays as it was.
    if (homeCreated || !ctx.home.exclusive) {
      await ctx.driver
        .dropClaimedHome(ctx.home, tenantId, ctx.claim)
        .catch((e: unknown) => this.logger.error(`could not remove the home of failed tenant ${tenantId}: ${(e as Error).message}`));
    }
    if (await this.onboardings.finish(tenantId, this.owner, steps, { status: 'failed', error: `${step.name}: ${message}` })) {
      await this.audit
        .record({ action: 'tenant.onboarding_failed', tenantId, actor: { type: 'system' }, details: { step: step.name, error: message.slice(0, 500) } })
        .catch((e: unknown) => this.logger.error(`tenant ${tenantId} failed; its audit entry failed too: ${(e as Error).message}`));
      await this.announce(ctx.tenant);
    }
    return 'failed';
  }

  private async announce(tenant: TenantEntity): Promise<void> {
    this.registry.invalidateTenant(tenant);
    await this.changes?.publishTenantChanged(tenant);
  }
}
