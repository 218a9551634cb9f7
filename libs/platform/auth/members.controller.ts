import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiPageResponse, UuidPipe, type Page } from '#strata/common';
import { ChangeMemberRoleDto, InvitationView, InviteMemberDto, ListMembersQuery, MemberView } from './auth.dto';
import { AuthErrorCode } from './auth.errors';
import { InvitationsService } from './invitations.service';
import { RefusedUnderImpersonation, RequireRole } from './route-access.decorators';
import { MembersService } from './members.service';

// Admins and owners manage members (@RequireRole); what only owners may do (owners) depends on the
// member concerned, so the services check that, under the tenant's members lock.
@Controller('members')
@RequireRole('admin')
@ApiTags('members')
export class MembersController {
  constructor(
    private readonly members: MembersService,
    private readonly invitations: InvitationsService,
  ) {}

  @Get()
  @ApiPageResponse(MemberView, 'one page of members, newest first')
  list(@Query() query: ListMembersQuery): Promise<Page<MemberView>> {
    return this.members.list(query.limit, query.cursor);
  }

  @Post('invitations')
  @RefusedUnderImpersonation()
  @ApiCreatedResponse({ type: InvitationView, description: 'invited: the invitation link was mailed (it replaces an earlier invitation of the email)' })
  @ApiErrors({ 409: [AuthErrorCode.MembershipExists], 503: [AuthErrorCode.MailNotSent] })
  invite(@Body() body: InviteMemberDto): Promise<InvitationView> {
    return this.invitations.invite(body.email, body.role);
  }

  @Get('invitations')
  @ApiPageResponse(InvitationView, 'one page of open invitations (not accepted, not expired), newest first')
  listInvitations(@Query() query: ListMembersQuery): Promise<Page<InvitationView>> {
    return this.invitations.listOpen(query.limit, query.cursor);
  }

  @Delete('invitations/:id')
  @RefusedUnderImpersonation()
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'withdrawn: the invitation link no longer works' })
  @ApiErrors({ 404: [AuthErrorCode.InvitationNotFound] })
  revokeInvitation(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.invitations.revoke(id.toLowerCase());
  }

  @Patch(':userId')
  @RefusedUnderImpersonation()
  @ApiOkResponse({ type: MemberView })
  @ApiErrors({ 404: [AuthErrorCode.MemberNotFound], 409: [AuthErrorCode.LastOwner] })
  changeRole(@Param('userId', UuidPipe) userId: string, @Body() body: ChangeMemberRoleDto): Promise<MemberView> {
    // Lower case: the registry's membership cache is keyed (and invalidated) by the lower-case id.
    return this.members.changeRole(userId.toLowerCase(), body.role);
  }

  @Delete(':userId')
  @RefusedUnderImpersonation()
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'removed from the tenant (the user stays)' })
  @ApiErrors({ 404: [AuthErrorCode.MemberNotFound], 409: [AuthErrorCode.LastOwner] })
  remove(@Param('userId', UuidPipe) userId: string): Promise<void> {
    return this.members.remove(userId.toLowerCase());
  }
}
