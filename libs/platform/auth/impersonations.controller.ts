import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiItemsResponse, UuidPipe } from '#strata/common';
import { AuthErrorCode } from './auth.errors';
import { ImpersonationTokenView, ImpersonationView, ListImpersonationsQuery, StartImpersonationDto } from './impersonation.dto';
import { ImpersonationsService } from './impersonations.service';
import { PlatformAdmin, PlatformOperator } from './route-access.decorators';

/** Operators act as a tenant's user for support (libs/platform/auth: impersonations.service.ts). */
@Controller('admin')
@PlatformAdmin()
@ApiTags('admin: impersonation')
export class ImpersonationsController {
  constructor(private readonly impersonations: ImpersonationsService) {}

  @Post('tenants/:id/impersonate')
  @ApiCreatedResponse({ type: ImpersonationTokenView, description: "started: the tenant's owners were mailed; the token works for 15 minutes at most" })
  @ApiErrors({
    403: [AuthErrorCode.OperatorNotImpersonable],
    404: [AuthErrorCode.TenantNotFound, AuthErrorCode.MemberNotFound],
    503: [AuthErrorCode.ImpersonationNotNotified],
  })
  start(@Param('id', UuidPipe) id: string, @Body() body: StartImpersonationDto, @PlatformOperator() operator: string): Promise<ImpersonationTokenView> {
    return this.impersonations.start(id.toLowerCase(), body.userId, body.reason, operator);
  }

  @Get('impersonations')
  @ApiItemsResponse(ImpersonationView, 'impersonations neither revoked nor expired, newest first')
  async list(@Query() query: ListImpersonationsQuery): Promise<{ items: ImpersonationView[] }> {
    return { items: await this.impersonations.listActive(query.tenantId?.toLowerCase()) };
  }

  @Delete('impersonations/:id')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'revoked: its token is refused from the next request on, on every instance (also when it already was)' })
  @ApiErrors({ 404: [AuthErrorCode.ImpersonationNotFound] })
  async revoke(@Param('id', UuidPipe) id: string, @PlatformOperator() operator: string): Promise<void> {
    await this.impersonations.revoke(id.toLowerCase(), operator);
  }
}
