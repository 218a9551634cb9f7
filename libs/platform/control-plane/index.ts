export {
  PoolEntity,
  TenantEntity,
  UserEntity,
  MembershipEntity,
  RefreshFamilyEntity,
  RefreshTokenEntity,
  InvitationEntity,
  CONTROL_PLANE_ENTITIES,
  TIERS,
  MEMBERSHIP_ROLES,
  directAddressOf,
  type PoolAddress,
  type Tier,
  type TenantStatus,
  type MembershipRole,
  type RefreshRevokeReason,
} from './control-plane.entities';
export { TenantRegistry, CONTROL_DATA_SOURCE } from './tenant.registry';
export { TENANT_CHANGE_PUBLISHER, type TenantChangePublisher } from './tenant-change.publisher';
export { TenantMoveHints, readMoveHint, type TenantMoveHint } from './tenant-move.hints';
export { ControlPlaneModule } from './control-plane.module';
export { withCredentials, withDatabase } from './connection-url';
export {
  AUDIT_LOG,
  AUDIT_ACTOR_TYPES,
  type AuditTrail,
  type AuditActor,
  type AuditActorType,
  type AuditEntryInput,
  type AuditAppended,
} from './audit.port';
