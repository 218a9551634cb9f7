import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, Length, Matches } from 'class-validator';

// Postgres text cannot hold NUL; refused here so it is a 400, not a driver error.
const NO_NUL = /^[^\u0000]*$/;

export class StartImpersonationDto {
  @ApiProperty({ format: 'uuid', description: 'the member of the tenant to act as' })
  @IsUUID('all', { message: 'userId must be a UUID' })
  userId: string;

  @ApiProperty({ minLength: 3, maxLength: 500, example: 'ticket #4711: invoice totals look wrong', description: 'why; shown to the tenant owners and kept in the audit log' })
  @IsString() @Length(3, 500) @Matches(NO_NUL, { message: 'reason must not contain NUL characters' })
  reason: string;
}

export class ListImpersonationsQuery {
  @ApiPropertyOptional({ format: 'uuid', description: "only this tenant's" })
  @IsOptional() @IsUUID('all', { message: 'tenantId must be a UUID' })
  tenantId?: string;
}

@ApiSchema({ name: 'Impersonation' })
export class ImpersonationView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty({ format: 'uuid', description: 'the user acted as' }) userId: string;
  @ApiProperty({ description: 'the operator acting (their token subject)' }) operatorId: string;
  @ApiProperty() reason: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time', description: 'at most 15 minutes after createdAt' }) expiresAt: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) revokedAt: string | null;
  @ApiProperty({ type: String, nullable: true }) revokedBy: string | null;
}

/** The token to act as the user with: a tenant bearer token carrying `act` (the operator) and `imp` (this impersonation). */
@ApiSchema({ name: 'ImpersonationToken' })
export class ImpersonationTokenView {
  @ApiProperty({ description: "a bearer token for the tenant's routes, as the user; no refresh token" }) access_token: string;
  @ApiProperty({ enum: ['Bearer'] }) token_type: 'Bearer';
  @ApiProperty({ type: 'integer', minimum: 0, maximum: 900, description: 'seconds until it expires (15 minutes at most)' }) expires_in: number;
  @ApiProperty({ type: ImpersonationView }) impersonation: ImpersonationView;
}
