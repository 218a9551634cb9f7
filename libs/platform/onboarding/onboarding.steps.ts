import { Injectable, Optional } from '@nestjs/common';
import { TenantRestorer } from '#strata/exports';
import type { PoolEntity, TenantEntity } from '#strata/control-plane';
import type { TenantHome, TierDriver } from '#strata/tenancy/platform';
import type { OnboardingRecord } from './onboarding.types';
import { TenantOnboardingsRepository } from './tenant-onboardings.repository';

/** What a step is given: the tenant, its home through its tier's driver, and how to say what it made. */
export interface OnboardingStepContext {
  tenant: TenantEntity;
  pool: PoolEntity;
  home: TenantHome;
  driver: TierDriver;
  onboarding: OnboardingRecord;
  /** The mark this onboarding leaves on a home it creates (homeClaimOf): recognised on retry, required to drop. */
  claim: string;
  /** Records that this onboarding created the home (persisted before the next step runs). */
  homeCreated(): void;
}

/**
 * One step of the pipeline. Every step is idempotent: it may run again after a crash or a failed
 * attempt, from the start, with whatever an earlier attempt left behind.
 */
export interface OnboardingStep {
  readonly name: string;
  run(ctx: OnboardingStepContext): Promise<void>;
}

/** The step names, in order, of a new onboarding (stored on its row: a running onboarding keeps its list across releases). */
export const DEFAULT_ONBOARDING_STEPS = ['create_home', 'migrate', 'seed_defaults', 'owner_membership'] as const;

/** A restore (`restoreFrom`, libs/platform/exports): the export's rows and files go in right after the migrations. */
export const RESTORE_ONBOARDING_STEPS = ['create_home', 'migrate', 'restore', 'seed_defaults', 'owner_membership'] as const;

/** Settings every new tenant starts with (the plans work makes these per plan). */
export const DEFAULT_TENANT_SETTINGS: Readonly<Record<string, unknown>> = { timezone: 'UTC', locale: 'en' };

/**
 * The steps by name. Data-driven: an onboarding's row lists the names it runs, so a `restore` step
 * (export/restore) is one more entry here and a different list at creation, not a new pipeline.
 */
@Injectable()
export class OnboardingSteps {
  private readonly byName = new Map<string, OnboardingStep>();

  // TenantRestorer comes from the exports module (global in the API, the worker and the CLI).
  constructor(repo: TenantOnboardingsRepository, @Optional() restorer?: TenantRestorer) {
    for (const step of defaultSteps(repo)) this.register(step);
    if (restorer) this.register(restoreStep(restorer));
  }

  register(step: OnboardingStep): void {
    this.byName.set(step.name, step);
  }

  of(name: string): OnboardingStep {
    const step = this.byName.get(name);
    if (!step) throw new Error(`no onboarding step named ${JSON.stringify(name)} in this release`);
    return step;
  }
}

/**
 * Fills the new home from the export in `params.restoreFrom` (verified again, then rows and files).
 * Idempotent: a home that already holds exactly the export's rows was restored by an earlier
 * attempt (rows commit in one transaction, after every file was stored), so it is done.
 */
function restoreStep(restorer: TenantRestorer): OnboardingStep {
  return {
    name: 'restore',
    async run(ctx) {
      const exportId = ctx.onboarding.params.restoreFrom;
      if (typeof exportId !== 'string') throw new Error('a restore onboarding needs params.restoreFrom (an export id)');
      await restorer.restore(exportId, ctx.tenant, ctx.home, { alreadyRestored: 'ok' });
    },
  };
}

function defaultSteps(repo: TenantOnboardingsRepository): OnboardingStep[] {
  return [
    {
      // Create-if-absent-and-say-so is the tier driver's: a home that exists without this
      // onboarding's mark stops the pipeline (TenantHomeExistsError) and is left as it was.
      name: 'create_home',
      async run(ctx) {
        if (await ctx.driver.createHome(ctx.home, ctx.claim, ctx.pool)) ctx.homeCreated();
      },
    },
    {
      name: 'migrate',
      async run(ctx) {
        await ctx.driver.migrateHome(ctx.home);
      },
    },
    {
      name: 'seed_defaults',
      async run(ctx) {
        await repo.seedSettings(ctx.tenant.id, DEFAULT_TENANT_SETTINGS);
      },
    },
    {
      name: 'owner_membership',
      async run(ctx) {
        const { ownerEmail: email, ownerPasswordHash: passwordHash } = ctx.onboarding;
        if (email && passwordHash) await repo.addOwner(ctx.tenant.id, { email, passwordHash });
      },
    },
  ];
}
