import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags, type SchemaObject } from '@nestjs/swagger';
import { PublicRoute } from '#strata/auth';
import { ReadinessService } from './readiness.service';

// Terminus' result per dependency (control, pool:<id>, homes, migrations, rls, redis): open-ended on purpose.
const CHECKS: SchemaObject = { type: 'object', additionalProperties: { type: 'object', properties: { status: { type: 'string' } }, additionalProperties: true } };
const READINESS: SchemaObject = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', enum: ['ok', 'error', 'shutting_down'] }, info: CHECKS, error: CHECKS, details: CHECKS },
};

@Controller('health')
@PublicRoute()
@ApiTags('health')
export class HealthController {
  constructor(private readonly readiness: ReadinessService) {}

  /** Liveness: the process answers. Never touches dependencies, so a slow database does not get it killed. */
  @Get('live')
  @ApiOkResponse({ description: 'the process answers', schema: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOkResponse({ description: 'ready; `details` lists every dependency, a degraded tenant database included', schema: READINESS })
  @ApiServiceUnavailableResponse({
    description: 'not ready: the control plane is down or an RLS guardrail is violated',
    schema: {
      type: 'object',
      required: ['statusCode', 'error', 'message', 'details'],
      properties: { statusCode: { type: 'integer', enum: [503] }, error: { type: 'string', enum: ['not_ready'] }, message: { type: 'string' }, details: READINESS },
    },
  })
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
