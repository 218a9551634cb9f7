import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { IsISO8601, IsOptional, IsUUID, Matches } from 'class-validator';
import { PageQuery } from '#strata/common';
import { AUDIT_ACTOR_TYPES, type AuditActorType } from '#strata/control-plane';

// A strict ISO 8601 instant with its offset, as every list filter of the API takes it.
const INSTANT = { strict: true, strictSeparator: true } as const;
const INSTANT_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const instantMessage = (field: string) => `${field} must be an ISO 8601 date-time with an offset, such as 2026-03-01T00:00:00Z`;
/** One action (`tenant.suspended`) or every action under a prefix (`impersonation.*`). */
export const ACTION_FILTER = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$/;

/** `GET /audit`: a tenant owner's own entries, newest first; `from` inclusive, `to` exclusive. */
export class TenantAuditQuery extends PageQuery {
  @ApiPropertyOptional({ pattern: ACTION_FILTER.source, example: 'member.role_changed', description: 'one action, or a prefix ending in `.*` (`impersonation.*`)' })
  @IsOptional() @Matches(ACTION_FILTER, { message: 'action must be a dotted action such as tenant.suspended, or a prefix such as impersonation.*' })
  action?: string;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'at or after this instant' })
  @IsOptional() @IsISO8601(INSTANT, { message: instantMessage('from') }) @Matches(INSTANT_PATTERN, { message: instantMessage('from') })
  from?: string;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'before this instant' })
  @IsOptional() @IsISO8601(INSTANT, { message: instantMessage('to') }) @Matches(INSTANT_PATTERN, { message: instantMessage('to') })
  to?: string;
}

/** `GET /admin/audit`: every entry, or one tenant's (entries of deleted tenants included). */
export class AdminAuditQuery extends TenantAuditQuery {
  @ApiPropertyOptional({ format: 'uuid', description: "only this tenant's entries" })
  @IsOptional() @IsUUID('all', { message: 'tenantId must be a UUID' })
  tenantId?: string;
}

/** The filters as AuditLog.list takes them. */
export interface AuditFilter {
  tenantId?: string;
  action?: string;
  from?: Date;
  to?: Date;
}

@ApiSchema({ name: 'AuditActor' })
export class AuditActorView {
  @ApiProperty({ enum: AUDIT_ACTOR_TYPES }) type: AuditActorType;
  @ApiProperty({ type: String, nullable: true, description: "the operator's token subject, the user's id; null for system and anonymous" }) id: string | null;
}

/** One entry of the audit log. `seq` and `hash` place it in the chain (`npm run audit -- verify`). */
@ApiSchema({ name: 'AuditEntry' })
export class AuditEntryView {
  @ApiProperty({ type: 'integer', minimum: 1, description: 'position in the chain, gapless' }) seq: number;
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ example: 'tenant.suspended' }) action: string;
  @ApiProperty({ type: AuditActorView }) actor: AuditActorView;
  @ApiProperty({ type: String, nullable: true, description: 'impersonation: the user the operator (actor) acted as' }) onBehalfOf: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) tenantId: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'the x-request-id of the request that caused it' }) requestId: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) details: Record<string, unknown>;
  @ApiProperty({ description: 'sha256 (hex) chaining this entry to the previous one' }) hash: string;
}
