import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

export type Tier = 'pool' | 'bridge' | 'silo';
export const TIERS: readonly Tier[] = ['pool', 'bridge', 'silo'];
export type TenantStatus = 'provisioning' | 'active' | 'suspended' | 'deleting' | 'deleted';
export type MembershipRole = 'owner' | 'admin' | 'member';
export const MEMBERSHIP_ROLES: readonly MembershipRole[] = ['owner', 'admin', 'member'];

@Entity({ name: 'pools', schema: 'control' })
export class PoolEntity {
  @PrimaryColumn('text') id: string;
  @Column('text') kind: Tier;
  @Column('text') host: string;
  @Column('integer') port: number;
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
  /** Tenant schema version of its own schema/database (bridge, silo); pool tenants follow their pool. */
  @Column('text', { name: 'schema_version' }) schemaVersion: string;
  /** Bumped by every move's cutover (migrations/control/0003). */
  @Column('integer', { name: 'placement_epoch' }) placementEpoch: number;
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

export const CONTROL_PLANE_ENTITIES = [PoolEntity, TenantEntity, UserEntity, MembershipEntity];
