import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

export type Tier = 'pool' | 'bridge' | 'silo';
export const TIERS: readonly Tier[] = ['pool', 'bridge', 'silo'];
export type TenantStatus = 'provisioning' | 'active' | 'suspended' | 'failed' | 'deleting' | 'deleted';
export type MembershipRole = 'owner' | 'admin' | 'member';
export const MEMBERSHIP_ROLES: readonly MembershipRole[] = ['owner', 'admin', 'member'];

@Entity({ name: 'pools', schema: 'control' })
export class PoolEntity {
  @PrimaryColumn('text') id: string;
  @Column('text') kind: Tier;
  /** Where units of work connect: the server, or a connection pooler in front of it. */
  @Column('text') host: string;
  @Column('integer') port: number;
  /** Where session work connects (DDL, migrations, moves' copy); null: host/port. See directAddressOf. */
  @Column('text', { name: 'direct_host', nullable: true }) directHost: string | null;
  @Column('integer', { name: 'direct_port', nullable: true }) directPort: number | null;
  @Column('text') database: string;
  @Column('integer', { name: 'max_connections' }) maxConnections: number;
  @Column('boolean', { name: 'is_default' }) isDefault: boolean;
  /** Tenant schema version of the shared schema (pool kind); see migrations/control/0002. */
  @Column('text', { name: 'schema_version' }) schemaVersion: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}

@Entity({ name: 'tenants', schema: 'control' })
export class TenantEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column('text') slug: string;
  @Column('text') name: string;
  @Column('text') tier: Tier;
  @Column('text', { name: 'pool_id' }) poolId: string;
  @Column('text') status: TenantStatus;
  @Column('text') plan: string;
  @Column('text') region: string;
  @Column('text', { name: 'schema_name' }) schemaName: string;
  @Column('text', { name: 'database_name', nullable: true }) databaseName: string | null;
  @Column('jsonb') settings: Record<string, unknown>;
  /** Operators' feature-flag overrides over the plan's flags (migrations/control/0009). */
  @Column('jsonb', { name: 'feature_overrides' }) featureOverrides: Record<string, boolean>;
  /** Tenant schema version of its own schema/database (bridge, silo); pool tenants follow their pool. */
  @Column('text', { name: 'schema_version' }) schemaVersion: string;
  /** Bumped by every move's cutover (migrations/control/0003). */
  @Column('integer', { name: 'placement_epoch' }) placementEpoch: number;
  /** Set while the tenant is in maintenance (migrations/control/0010): its requests answer 503, its jobs wait. */
  @Column('timestamptz', { name: 'maintenance_since', nullable: true }) maintenanceSince: Date | null;
  @Column('text', { name: 'maintenance_reason', nullable: true }) maintenanceReason: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

@Entity({ name: 'users', schema: 'control' })
export class UserEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column('text') email: string;
  @Column('text', { name: 'password_hash', select: false }) passwordHash: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

@Entity({ name: 'memberships', schema: 'control' })
export class MembershipEntity {
  @PrimaryColumn('uuid', { name: 'user_id' }) userId: string;
  @PrimaryColumn('uuid', { name: 'tenant_id' }) tenantId: string;
  @Column('text') role: MembershipRole;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}

export type RefreshRevokeReason = 'logout' | 'reuse' | 'password_change' | 'membership_removed';

/** One login's refresh tokens (migrations/control/0005): rotation stays inside it, reuse revokes it whole. */
@Entity({ name: 'refresh_families', schema: 'control' })
export class RefreshFamilyEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column('uuid', { name: 'user_id' }) userId: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt: Date;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt: Date | null;
  @Column('text', { name: 'revoked_reason', nullable: true }) revokedReason: RefreshRevokeReason | null;
}

/** A refresh token, by the sha256 of its value (the value itself is never stored). */
@Entity({ name: 'refresh_tokens', schema: 'control' })
export class RefreshTokenEntity {
  @PrimaryColumn('bytea', { name: 'token_hash' }) tokenHash: Buffer;
  @Column('uuid', { name: 'family_id' }) familyId: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt: Date;
  @Column('timestamptz', { name: 'used_at', nullable: true }) usedAt: Date | null;
}

/** An invitation into a tenant, by the sha256 of its token; at most one open per email and tenant. */
@Entity({ name: 'invitations', schema: 'control' })
export class InvitationEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId: string;
  @Column('text') email: string;
  @Column('text') role: MembershipRole;
  @Column('bytea', { name: 'token_hash', select: false }) tokenHash: Buffer;
  @Column('uuid', { name: 'invited_by', nullable: true }) invitedBy: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt: Date;
  @Column('timestamptz', { name: 'accepted_at', nullable: true }) acceptedAt: Date | null;
  @Column('uuid', { name: 'accepted_by', nullable: true }) acceptedBy: string | null;
}

export const CONTROL_PLANE_ENTITIES = [
  PoolEntity,
  TenantEntity,
  UserEntity,
  MembershipEntity,
  RefreshFamilyEntity,
  RefreshTokenEntity,
  InvitationEntity,
];

/** A pool's addresses: `host`/`port` for units of work, the optional direct pair for session work. */
export type PoolAddress = Pick<PoolEntity, 'host' | 'port'> & Partial<Pick<PoolEntity, 'directHost' | 'directPort'>>;

/**
 * Where session work reaches a pool's server: provisioning, migrations, a move's copy (advisory
 * locks, COPY, triggers, pg_temp helpers), which a transaction-mode pooler cannot carry. Its direct
 * address where one is set, else the one units of work use (no pooler: they are the same).
 */
export function directAddressOf(pool: PoolAddress): { host: string; port: number } {
  return { host: pool.directHost ?? pool.host, port: pool.directPort ?? pool.port };
}
