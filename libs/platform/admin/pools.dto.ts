import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { TIERS, type Tier } from '#strata/control-plane';

/** The same rules as the CHECK constraints of control.pools (migrations/control/0001). */
export const POOL_ID_RULE = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
export const DATABASE_NAME_RULE = /^[a-z_][a-z0-9_]{0,62}$/;

export class CreatePoolDto {
  @ApiProperty({ pattern: POOL_ID_RULE, example: 'eu-pool-2' })
  @Matches(POOL_ID_RULE, { message: `id must match ${POOL_ID_RULE.source}` })
  id: string;

  @ApiProperty({ enum: TIERS, description: 'the kind of tenants it hosts' }) @IsIn(TIERS as Tier[]) kind: Tier;

  /** Host name, IP address (or a Unix socket directory) of the PostgreSQL server. */
  @ApiProperty({ minLength: 1, maxLength: 255 }) @IsString() @MinLength(1) @MaxLength(255) host: string;

  @ApiProperty({ type: 'integer', minimum: 1, maximum: 65535 }) @IsInt() @Min(1) @Max(65535) port: number;

  /** pool/bridge: the database holding the shared schema or the tenant schemas; silo: the maintenance database CREATE DATABASE runs from. */
  @ApiProperty({ pattern: DATABASE_NAME_RULE })
  @Matches(DATABASE_NAME_RULE, { message: `database must match ${DATABASE_NAME_RULE.source}` })
  database: string;

  /**
   * The server itself, when `host`/`port` is a connection pooler in front of it (PgBouncer in
   * transaction mode): provisioning, migrations and moves connect here, units of work to host/port.
   * Default: `host` (and `port`), i.e. no pooler.
   */
  @ApiPropertyOptional({ minLength: 1, maxLength: 255, description: 'the server itself when host/port is a connection pooler: session work (provisioning, migrations, moves) connects here; default host' })
  @IsOptional() @IsString() @MinLength(1) @MaxLength(255) directHost?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 65535, description: 'port of the direct address; default port' })
  @IsOptional() @IsInt() @Min(1) @Max(65535) directPort?: number;

  /** Most connections one instance opens to it (default 10). */
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 1000, default: 10 })
  @IsOptional() @IsInt() @Min(1) @Max(1000) maxConnections?: number;
}

/** A registered pool (server + database) as operators see it. */
@ApiSchema({ name: 'Pool' })
export class PoolView {
  @ApiProperty({ pattern: POOL_ID_RULE }) id: string;
  @ApiProperty({ enum: TIERS }) kind: Tier;
  @ApiProperty() host: string;
  @ApiProperty({ type: 'integer' }) port: number;
  @ApiProperty() database: string;
  /** Where provisioning, migrations and moves connect: the server itself; host/port when no direct address was given. */
  @ApiProperty({ description: 'where session work connects (the server itself); equals host without a pooler' }) directHost: string;
  @ApiProperty({ type: 'integer' }) directPort: number;
  @ApiProperty({ type: 'integer' }) maxConnections: number;
  @ApiProperty() isDefault: boolean;
  /** Tenants placed on it whose status is not `deleted`. */
  @ApiProperty({ type: 'integer', minimum: 0, description: 'tenants placed on it, deleted ones left out' }) tenantCount: number;
}
