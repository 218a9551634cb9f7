import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { IsEmail, IsString, MaxLength, MinLength } from 'class-validator';
import { DataSource } from 'typeorm';
import { unauthorized } from '#strata/common';
import { CONTROL_DATA_SOURCE, MembershipEntity, UserEntity } from '#strata/control-plane';
import { TenantContext } from '#strata/tenancy/platform';
import { JwtService } from './jwt.service';
import { DUMMY_HASH_PROMISE, verifyPassword } from './password.hasher';
import { TenantAnonymous } from './route-access.decorators';

export class LoginDto {
  @IsEmail() @MaxLength(254) email: string;
  @IsString() @MinLength(1) @MaxLength(1024) password: string;
}

@Controller('auth')
export class AuthController {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly jwt: JwtService,
    private readonly context: TenantContext,
  ) {}

  /** Every failure is the same 401, so login reveals neither users nor memberships. */
  @Post('login')
  @HttpCode(200)
  @TenantAnonymous()
  async login(@Body() body: LoginDto): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }> {
    const tenant = this.context.tenant;
    const user = await this.db
      .getRepository(UserEntity)
      .createQueryBuilder('u')
      .addSelect('u.passwordHash')
      .where('u.email = :email', { email: body.email.toLowerCase() })
      .getOne();
    const ok = await verifyPassword(body.password, user?.passwordHash ?? (await DUMMY_HASH_PROMISE));
    const membership = user && ok ? await this.db.getRepository(MembershipEntity).findOneBy({ userId: user.id, tenantId: tenant.id }) : null;
    if (!user || !ok || !membership) throw unauthorized('invalid_credentials', 'email or password is wrong');
    const { token, expiresIn } = await this.jwt.signTenantToken({ sub: user.id, tid: tenant.id, role: membership.role });
    return { access_token: token, token_type: 'Bearer', expires_in: expiresIn };
  }
}
