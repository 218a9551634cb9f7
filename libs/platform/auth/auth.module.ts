import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthController } from './auth.controller';
import { JwtService } from './jwt.service';
import { TenantRequestGuard } from './tenant-request.guard';

/** Login, token verification and the global guard that makes every route a tenant route by default. */
@Module({
  controllers: [AuthController],
  providers: [JwtService, { provide: APP_GUARD, useClass: TenantRequestGuard }],
  exports: [JwtService],
})
export class AuthModule {}
