import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { UuidPipe } from '#strata/common';
import { PlatformAdmin, PlatformOperator } from '#strata/auth';
import { RequestMoveDto } from './moves.dto';
import { MovesService } from './moves.service';
import type { TenantMoveView } from './tenant-move.types';

/** Operators move tenants online between tiers and servers (libs/platform/moves/README.md). */
@Controller('admin')
@PlatformAdmin()
export class MovesController {
  constructor(private readonly moves: MovesService) {}

  @Post('tenants/:id/moves')
  @HttpCode(202)
  request(@Param('id', UuidPipe) id: string, @Body() body: RequestMoveDto, @PlatformOperator() operator: string): Promise<TenantMoveView> {
    return this.moves.request(id, body, operator);
  }

  @Get('tenants/:id/moves')
  async list(@Param('id', UuidPipe) id: string): Promise<{ items: TenantMoveView[] }> {
    return { items: await this.moves.listForTenant(id) };
  }

  @Get('moves/:id')
  get(@Param('id', UuidPipe) id: string): Promise<TenantMoveView> {
    return this.moves.get(id);
  }

  @Post('moves/:id/cancel')
  @HttpCode(202)
  cancel(@Param('id', UuidPipe) id: string): Promise<TenantMoveView> {
    return this.moves.cancel(id);
  }
}
