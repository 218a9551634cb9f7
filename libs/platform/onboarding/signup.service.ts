import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { ApiException, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { CONTROL_DATA_SOURCE, TenantEntity } from '#strata/control-plane';
import { hashPassword, verifyPassword } from '#strata/auth';
import { OnboardingErrorCode as E, onboardingError } from './onboarding.errors';
import { OnboardingService } from './onboarding.service';
import type { SignupDto, SignupView } from './signup.dto';
import { TenantOnboardingsRepository } from './tenant-onboardings.repository';

let decoy: Promise<string> | undefined;
/** A hash no password matches (made once, on first use), for checks that must cost what a real one does. */
const decoyHash = () => (decoy ??= hashPassword(randomBytes(16).toString('hex')));

/** Self-service signup: the same pipeline as `POST /admin/tenants`, with the signer as first owner. */
@Injectable()
export class SignupService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    private readonly onboarding: OnboardingService,
    private readonly onboardings: TenantOnboardingsRepository,
  ) {}

  /** The new tenant, `active` when it got there within SIGNUP_WAIT_MS (`done`), else `provisioning`. */
  async signup(dto: SignupDto): Promise<{ view: SignupView; done: boolean }> {
    const email = dto.email.toLowerCase();
    // An existing user becomes owner only with their own password: nobody signs someone else up.
    const existing: Array<{ password_hash: string }> = await this.db.query('SELECT password_hash FROM control.users WHERE email = $1', [email]);
    if (existing.length && !(await verifyPassword(dto.password, existing[0].password_hash))) {
      throw onboardingError(E.emailTaken, 'a user with this email exists: sign up with their password, or use another email');
    }
    let tenant: { id: string; slug: string } | null;
    try {
      tenant = await this.onboarding.start({
        slug: dto.slug,
        name: dto.company,
        // No tier: the plan's default tier (pool for free and standard); operators move tenants later.
        plan: dto.plan,
        owner: { email, passwordHash: existing[0]?.password_hash ?? (await hashPassword(dto.password)) },
        // Nobody signed in asked: the audit entry names the address the owner signs up with.
        actor: { type: 'anonymous', id: email },
      });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === E.tenantSlugTaken)) throw err;
      tenant = await this.sameSignup(dto.slug, email, dto.password);
      if (!tenant) throw onboardingError(E.slugTaken, `slug ${dto.slug} is not available`);
    }
    const state = await this.onboarding.settle(tenant.id, this.config.signupWaitMs);
    if (state.status === 'failed') {
      if (state.homeExists) throw onboardingError(E.slugTaken, `slug ${dto.slug} is not available`);
      throw onboardingError(E.signupFailed, 'the new tenant could not be set up; try again later or contact support');
    }
    if (state.status === 'provisioning') this.onboarding.kick();
    return { view: viewOf(tenant, state.status), done: state.status === 'active' };
  }

  /**
   * A client retrying its own signup (it timed out on the first answer) gets that signup again: the
   * slug's tenant was started by a signup for this email, and the password sent hashes to the one
   * that signup stored. Anyone else gets the same 409 slug_taken as for any taken slug (README: why
   * the password, and not an Idempotency-Key alone, is the proof).
   */
  private async sameSignup(slug: string, email: string, password: string): Promise<{ id: string; slug: string } | null> {
    const first = await this.onboardings.signupBySlug(slug);
    // Always one password check, against a decoy when there is nothing to check: how long the 409
    // takes must not tell a stranger whether the slug was a signup, or whether they guessed its email.
    const sameEmail = first?.ownerEmail === email;
    const ok = await verifyPassword(password, sameEmail ? first!.ownerPasswordHash : await decoyHash());
    return sameEmail && ok ? first : null;
  }

  async get(tenantId: string): Promise<SignupView> {
    const state = await this.onboarding.stateOf(tenantId);
    const tenant = state && state.steps.length ? await this.db.getRepository(TenantEntity).findOneBy({ id: tenantId }) : null;
    if (!state || !tenant) throw onboardingError(E.signupNotFound, 'no signup with this id');
    return viewOf(tenant, state.status);
  }
}

const viewOf = (tenant: { id: string; slug: string }, status: string): SignupView => ({
  tenantId: tenant.id,
  slug: tenant.slug,
  status,
  poll: `/signup/${tenant.id}`,
  login: `/t/${tenant.slug}/auth/login`,
});
