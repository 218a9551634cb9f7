import type { EntityManager } from 'typeorm';

/**
 * How a change reaches the audit log. Control-plane only declares the contract (as it does for
 * TENANT_CHANGE_PUBLISHER); libs/platform/audit implements it over `control.audit_log`. Auth, admin
 * and moves record through this token, so the audit lib may use auth's route decorators without a
 * cycle between the two.
 */
export const AUDIT_LOG = Symbol('AUDIT_LOG');

export const AUDIT_ACTOR_TYPES = ['operator', 'user', 'system', 'anonymous'] as const;
export type AuditActorType = (typeof AUDIT_ACTOR_TYPES)[number];

/** Who acted: a platform operator (token `sub`), a tenant user (id), the system itself, or nobody known. */
export interface AuditActor {
  type: AuditActorType;
  id?: string | null;
}

export interface AuditEntryInput {
  /** Dotted, lower case: `tenant.suspended`, `member.role_changed`, `auth.login_failed` … */
  action: string;
  tenantId?: string | null;
  actor: AuditActor;
  /** The user an operator acted as (impersonation). Filled from the request when it is impersonated. */
  onBehalfOf?: string | null;
  /** Ids and counts, never secrets: entries are kept forever and shown to tenant owners. */
  details?: Record<string, unknown>;
  /** Defaults to the current request's id (x-request-id), when there is one. */
  requestId?: string | null;
}

export interface AuditAppended {
  seq: number;
  id: string;
  createdAt: Date;
}

export interface AuditTrail {
  /**
   * Appends one entry. Given `em` (a control-plane transaction), the entry commits or rolls back
   * with the caller's change; without it the entry is its own transaction. Throws when the entry
   * could not be written: an audited action must not succeed unrecorded.
   */
  record(entry: AuditEntryInput, em?: EntityManager): Promise<AuditAppended>;
}
