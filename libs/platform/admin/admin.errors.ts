/**
 * The stable `error` codes of the platform admin API (libs/platform/admin), in one place. They travel in
 * #strata/common's one wire shape `{statusCode, error, message}` (badRequest, conflict, ApiException).
 */
export const AdminErrorCode = {
  /** 400: the request body or a field failed validation (the shared validation pipe's code). */
  ValidationFailed: 'validation_failed',

  // tenants (POST /admin/tenants …)
  /** 400: no pool of the tenant's tier with that id (or no default one). */
  InvalidPool: 'invalid_pool',
  /** 400: `plan` names no plan of GET /admin/plans. */
  InvalidPlan: 'invalid_plan',
  /** 409: the slug belongs to another tenant. */
  TenantSlugTaken: 'tenant_slug_taken',
  /**
   * 409: a schema or database named after the slug already exists on the pool's server and this
   * onboarding did not create it: it was left untouched; the tenant record is `failed`.
   */
  TenantHomeExists: 'tenant_home_exists',
  /**
   * 503: an onboarding step kept failing (ONBOARDING_MAX_ATTEMPTS): the tenant is `failed` with the
   * step's error (GET /admin/tenants/:id), never served, and what its onboarding created is removed.
   */
  ProvisioningFailed: 'provisioning_failed',
  /** 404: no (live) tenant with that id. */
  TenantNotFound: 'tenant_not_found',
  /** 409: the tenant's status does not allow the change. */
  TenantStateConflict: 'tenant_state_conflict',
  /** 409: the user already belongs to the tenant. */
  MembershipExists: 'membership_exists',
  /** 400: POST /admin/tenants/:id/users for an email no user has yet, without `password` to create the user. */
  PasswordRequired: 'password_required',
  /**
   * 409: a password was given for an email that already has a user. It is refused, not ignored: the
   * password stays the user's own, and nothing was changed. Send the request without `password`.
   */
  UserExistsPasswordIgnored: 'user_exists_password_ignored',

  // pools (POST /admin/pools)
  /** 409: a pool with that id is registered. */
  PoolExists: 'pool_exists',
  /** 400: the server or database cannot be reached as the owner (refused, timeout, authentication, pg_hba) or the app role cannot log in there; nothing registered. */
  PoolUnreachable: 'pool_unreachable',
  /** 503: connected, but preparing the database failed (privileges to create it or the roles, migrating `shared`); nothing registered. */
  PoolSetupFailed: 'pool_setup_failed',
} as const;

export type AdminErrorCode = (typeof AdminErrorCode)[keyof typeof AdminErrorCode];
