import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import type { Response } from 'express';
import { PublicRoute } from '#strata/auth';
import { ReadinessService } from './readiness.service';

@Controller('health')
@PublicRoute()
export class HealthController {
  constructor(private readonly readiness: ReadinessService) {}

  /** Liveness: the process answers. Never touches dependencies, so a slow database does not get it killed. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    try {
      res.status(HttpStatus.OK).json(await this.readiness.check());
    } catch (err) {
      // Terminus throws a 503 whose body lists each dependency; keep those details under our error shape.
      const details = (err as { getResponse?: () => unknown }).getResponse?.() ?? {};
      const failing = Object.keys((details as { error?: Record<string, unknown> }).error ?? {});
      res.status(HttpStatus.SERVICE_UNAVAILABLE).json({
        statusCode: 503,
        error: 'not_ready',
        message: failing.length ? `not ready: ${failing.join(', ')}` : 'not ready',
        details,
      });
    }
  }
}
