export {
  PoolEntity,
  TenantEntity,
  UserEntity,
  MembershipEntity,
  CONTROL_PLANE_ENTITIES,
  TIERS,
  MEMBERSHIP_ROLES,
  type Tier,
  type TenantStatus,
  type MembershipRole,
} from './control-plane.entities';
export { TenantRegistry, CONTROL_DATA_SOURCE } from './tenant.registry';
export { TENANT_CHANGE_PUBLISHER, type TenantChangePublisher } from './tenant-change.publisher';
export { ControlPlaneModule } from './control-plane.module';
export { withCredentials, withDatabase } from './connection-url';
