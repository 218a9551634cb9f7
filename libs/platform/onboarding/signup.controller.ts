import { Body, Controller, Get, Inject, Injectable, Param, Post, Res, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ApiAcceptedResponse, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ApiErrors, STRATA_CONFIG, UuidPipe, type StrataConfig } from '#strata/common';
import { PublicRoute } from '#strata/auth';
import { OnboardingErrorCode as E, onboardingError, onboardingErrors } from './onboarding.errors';
import { SignupDto, SignupView } from './signup.dto';
import { SignupRateLimiter } from './signup.rate-limiter';
import { SignupService } from './signup.service';

/** SIGNUP_ENABLED off: the routes answer 404 as if they did not exist. Then, for POST, the address's rate limit. */
@Injectable()
export class SignupGate implements CanActivate {
  constructor(
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    private readonly limiter: SignupRateLimiter,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (!this.config.signupEnabled) throw onboardingError(E.signupNotFound, 'signup is not enabled here');
    const req = ctx.switchToHttp().getRequest<Request>();
    if (req.method === 'POST') await this.limiter.consume(req.ip ?? req.socket.remoteAddress ?? 'unknown');
    return true;
  }
}

/** Self-service signup (public, SIGNUP_ENABLED): a new pool tenant with the signer as its owner. */
@Controller('signup')
@PublicRoute()
@UseGuards(SignupGate)
@ApiTags('signup')
export class SignupController {
  constructor(private readonly signups: SignupService) {}

  @Post()
  @ApiCreatedResponse({ type: SignupView, description: 'the tenant is active: the owner can log in' })
  @ApiAcceptedResponse({ type: SignupView, description: 'still being set up: poll `poll` (also the Location header) until `active`' })
  @ApiErrors(onboardingErrors(E.invalidPlan, E.slugTaken, E.emailTaken, E.signupNotFound, E.signupRateLimited, E.signupFailed))
  async signup(@Body() body: SignupDto, @Res({ passthrough: true }) res: Response): Promise<SignupView> {
    const { view, done } = await this.signups.signup(body);
    if (!done) res.status(202).location(view.poll);
    return view;
  }

  @Get(':id')
  @ApiOkResponse({ type: SignupView })
  @ApiErrors(onboardingErrors(E.signupNotFound))
  get(@Param('id', UuidPipe) id: string): Promise<SignupView> {
    return this.signups.get(id);
  }
}
