import { Inject, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { MailModule } from '#strata/mail';
import { AuthController } from './auth.controller';
import { CredentialsVerifier } from './credentials.verifier';
import { PASSWORD_HASHING } from './hashing.gate';
import { InvitationsService } from './invitations.service';
import { ImpersonationsController } from './impersonations.controller';
import { ImpersonationsService } from './impersonations.service';
import { JwtService } from './jwt.service';
import { LoginFailures } from './login-failures.aggregator';
import { MembersController } from './members.controller';
import { MembersService } from './members.service';
import { MembershipChanges } from './membership.changes';
import { SessionsService } from './sessions.service';
import { TenantRequestGuard } from './tenant-request.guard';

/**
 * Login and sessions, token verification, the global guard that makes every route a tenant route
 * by default, and a tenant's members. Invitations go out through the mail port (MAIL_DRIVER).
 */
@Module({
  imports: [MailModule.forRoot()],
  controllers: [AuthController, MembersController, ImpersonationsController],
  providers: [
    JwtService,
    CredentialsVerifier,
    SessionsService,
    MembershipChanges,
    MembersService,
    InvitationsService,
    LoginFailures,
    ImpersonationsService,
    { provide: APP_GUARD, useClass: TenantRequestGuard },
  ],
  exports: [JwtService, LoginFailures],
})
export class AuthModule {
  constructor(@Inject(STRATA_CONFIG) config: StrataConfig) {
    // One gate per process (password.hasher.ts is plain functions, used outside Nest too): configured here, at startup.
    PASSWORD_HASHING.configure(config.hashConcurrency, config.hashQueueMax);
  }
}
