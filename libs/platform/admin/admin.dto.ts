import { IsEmail, IsIn, IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { MEMBERSHIP_ROLES, TIERS, type MembershipRole, type Tier } from '#strata/control-plane';

export class CreateTenantDto {
  @Matches(/^[a-z][a-z0-9-]{1,38}[a-z0-9]$/, { message: 'slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$' })
  slug: string;

  @IsString() @MinLength(1) @MaxLength(200) name: string;

  @IsIn(TIERS as Tier[]) tier: Tier;

  @IsOptional() @Matches(/^[a-z][a-z0-9-]{0,38}$/) plan?: string;

  /** Host it on a specific pool; defaults to the tier's default pool. */
  @IsOptional() @Matches(/^[a-z][a-z0-9-]{1,38}[a-z0-9]$/) poolId?: string;
}

export class AddTenantUserDto {
  @IsEmail() @MaxLength(254) email: string;
  @IsString() @MinLength(8) @MaxLength(1024) password: string;
  @IsIn(MEMBERSHIP_ROLES as MembershipRole[]) role: MembershipRole;
}
