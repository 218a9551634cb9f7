import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { IsEmail, IsIn, IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { PageQuery } from '#strata/common';
import { MEMBERSHIP_ROLES, type MembershipRole } from '#strata/control-plane';

/** Passwords a user chooses here; checking an existing one accepts any length (older accounts). */
const NEW_PASSWORD_MIN = 8;
const PASSWORD_MAX = 1024;
// The opaque tokens we issue are 43 base64url characters; the bound keeps hashing hostile input cheap.
const OPAQUE_TOKEN = /^[A-Za-z0-9_-]{20,128}$/;

export class LoginDto {
  @ApiProperty({ format: 'email', maxLength: 254 }) @IsEmail() @MaxLength(254) email: string;
  @ApiProperty({ minLength: 1, maxLength: PASSWORD_MAX }) @IsString() @MinLength(1) @MaxLength(PASSWORD_MAX) password: string;
}

export class RefreshTokenDto {
  @ApiProperty({ pattern: OPAQUE_TOKEN, description: 'the refresh_token of the last login, refresh or password change' })
  @Matches(OPAQUE_TOKEN, { message: 'refresh_token must be a refresh token as issued by /auth/login or /auth/refresh' })
  refresh_token: string;
}

export class ChangePasswordDto {
  @ApiProperty({ minLength: 1, maxLength: PASSWORD_MAX }) @IsString() @MinLength(1) @MaxLength(PASSWORD_MAX) currentPassword: string;
  @ApiProperty({ minLength: NEW_PASSWORD_MIN, maxLength: PASSWORD_MAX }) @IsString() @MinLength(NEW_PASSWORD_MIN) @MaxLength(PASSWORD_MAX) newPassword: string;
}

export class AcceptInvitationDto {
  @ApiProperty({ pattern: OPAQUE_TOKEN, description: 'the token of the invitation link' })
  @Matches(OPAQUE_TOKEN, { message: 'token must be the invitation token from the invitation link' })
  token: string;
  /** Creates the account when none exists for the invited email; for an existing account it must be its password. */
  @ApiPropertyOptional({ minLength: NEW_PASSWORD_MIN, maxLength: PASSWORD_MAX, description: "creates the account when none exists for the invited email; for an existing account, its password" })
  @IsOptional() @IsString() @MinLength(NEW_PASSWORD_MIN) @MaxLength(PASSWORD_MAX) password?: string;
}

export class InviteMemberDto {
  @ApiProperty({ format: 'email', maxLength: 254 }) @IsEmail() @MaxLength(254) email: string;
  @ApiProperty({ enum: MEMBERSHIP_ROLES, description: 'only an owner may invite an owner' }) @IsIn(MEMBERSHIP_ROLES as MembershipRole[]) role: MembershipRole;
}

export class ChangeMemberRoleDto {
  @ApiProperty({ enum: MEMBERSHIP_ROLES, description: "only an owner may make someone owner or change an owner's role" })
  @IsIn(MEMBERSHIP_ROLES as MembershipRole[])
  role: MembershipRole;
}

export class ListMembersQuery extends PageQuery {}

/** What login, refresh and a password change answer: a short-lived access token and its refresh token. */
@ApiSchema({ name: 'SessionTokens' })
export class SessionTokens {
  @ApiProperty({ description: "the bearer token for this tenant's routes (`authorization: Bearer …`)" }) access_token: string;
  @ApiProperty({ enum: ['Bearer'] }) token_type: 'Bearer';
  @ApiProperty({ type: 'integer', minimum: 1, description: 'seconds until the access token expires' }) expires_in: number;
  @ApiProperty({ description: 'single use: POST /auth/refresh answers the next one; a second use ends the whole login' }) refresh_token: string;
  @ApiProperty({ type: 'integer', minimum: 1, description: 'seconds until the refresh token expires' }) refresh_expires_in: number;
}

@ApiSchema({ name: 'UserRef' })
export class UserRefView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'email' }) email: string;
}

@ApiSchema({ name: 'TenantRef' })
export class TenantRefView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() slug: string;
  @ApiProperty() name: string;
}

@ApiSchema({ name: 'Me' })
export class MeView {
  @ApiProperty({ type: UserRefView }) user: UserRefView;
  @ApiProperty({ type: TenantRefView }) tenant: TenantRefView;
  @ApiProperty({ enum: MEMBERSHIP_ROLES, description: 'as it is now (not as the token says)' }) role: MembershipRole;
  /** When the access token of this request expires (ISO 8601); refresh before it. */
  @ApiProperty({ format: 'date-time', description: 'when the access token of this request expires; refresh before it' }) tokenExpiresAt: string;
}

@ApiSchema({ name: 'UserTenant' })
export class UserTenantView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() slug: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: MEMBERSHIP_ROLES }) role: MembershipRole;
  @ApiProperty({ enum: ['active', 'suspended'] }) status: 'active' | 'suspended';
}

@ApiSchema({ name: 'Member' })
export class MemberView {
  @ApiProperty({ format: 'uuid' }) userId: string;
  @ApiProperty({ format: 'email' }) email: string;
  @ApiProperty({ enum: MEMBERSHIP_ROLES }) role: MembershipRole;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
}

@ApiSchema({ name: 'Invitation' })
export class InvitationView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'email' }) email: string;
  @ApiProperty({ enum: MEMBERSHIP_ROLES }) role: MembershipRole;
  @ApiProperty({ format: 'date-time' }) expiresAt: string;
}

@ApiSchema({ name: 'AcceptedInvitation' })
export class AcceptedInvitationView {
  @ApiProperty({ format: 'uuid' }) userId: string;
  @ApiProperty({ format: 'email' }) email: string;
  @ApiProperty({ enum: MEMBERSHIP_ROLES }) role: MembershipRole;
  @ApiProperty({ type: TenantRefView }) tenant: TenantRefView;
  /** True when accepting created the account (with the password given). */
  @ApiProperty({ description: 'true when accepting created the account (with the password given)' }) userCreated: boolean;
}
