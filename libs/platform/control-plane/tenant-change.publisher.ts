import type { TenantMoveHint } from './tenant-move.hints';

/**
 * How a change to the control plane reaches every instance's TenantRegistry. Control-plane only
 * declares the contract; libs/platform/cache implements it over Redis pub/sub. Writers (admin) inject it
 * optionally, so an app without Redis still invalidates its own registry and nothing else.
 */
export const TENANT_CHANGE_PUBLISHER = Symbol('TENANT_CHANGE_PUBLISHER');

export interface TenantChangePublisher {
  /** Every instance (this one included) drops what it cached about the tenant. Never throws. */
  publishTenantChanged(tenant: { id: string; slug: string }): Promise<void>;
  /** Every instance drops one cached membership answer (negative answers included). Never throws. */
  publishMembershipChanged(userId: string, tenantId: string): Promise<void>;
  /** Every instance drops everything its registry cached (and what is kept beside it: plans). Never throws. */
  publishAllChanged(): Promise<void>;
  /**
   * Every instance (this one included) that serves the tenant opens connections to where it is
   * about to live (TenantMoveHints). A hint only: nothing is invalidated. Never throws.
   */
  publishTenantMoving(hint: TenantMoveHint): Promise<void>;
}
