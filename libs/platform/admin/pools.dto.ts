import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { TIERS, type Tier } from '#strata/control-plane';

/** The same rules as the CHECK constraints of control.pools (migrations/control/0001). */
export const POOL_ID_RULE = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
export const DATABASE_NAME_RULE = /^[a-z_][a-z0-9_]{0,62}$/;

export class CreatePoolDto {
  @Matches(POOL_ID_RULE, { message: `id must match ${POOL_ID_RULE.source}` })
  id: string;

  @IsIn(TIERS as Tier[]) kind: Tier;

  /** Host name, IP address (or a Unix socket directory) of the PostgreSQL server. */
  @IsString() @MinLength(1) @MaxLength(255) host: string;

  @IsInt() @Min(1) @Max(65535) port: number;

  /** pool/bridge: the database holding the shared schema or the tenant schemas; silo: the maintenance database CREATE DATABASE runs from. */
  @Matches(DATABASE_NAME_RULE, { message: `database must match ${DATABASE_NAME_RULE.source}` })
  database: string;

  /** Most connections one instance opens to it (default 10). */
  @IsOptional() @IsInt() @Min(1) @Max(1000) maxConnections?: number;
}
