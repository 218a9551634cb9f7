import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import { PublicRoute } from '#strata/auth';
import { MetricsService } from './metrics.service';

/**
 * Prometheus scrape endpoint. Public like the health probes: it carries tenant ids (UUIDs) but no
 * names, emails or secrets. Restrict it at the network/ingress level in production.
 */
@Controller()
@ApiTags('operations')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @PublicRoute()
  @Get('metrics')
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text exposition format', schema: { type: 'string' } })
  async scrape(@Res() res: Response): Promise<void> {
    const body = await this.metrics.metrics();
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(body);
  }
}
