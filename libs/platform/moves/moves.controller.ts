import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiItemsResponse, UuidPipe } from '#strata/common';
import { PlatformAdmin, PlatformOperator } from '#strata/auth';
import { MoveErrorCode as E, moveErrors } from './moves.errors';
import { RequestMoveDto } from './moves.dto';
import { MovesService } from './moves.service';
import { TenantMoveView } from './tenant-move.types';

/** Operators move tenants online between tiers and servers (libs/platform/moves/README.md). */
@Controller('admin')
@PlatformAdmin()
@ApiTags('admin: moves')
export class MovesController {
  constructor(private readonly moves: MovesService) {}

  @Post('tenants/:id/moves')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: TenantMoveView, description: 'queued; an executor runs it (follow it with GET /admin/moves/{id})' })
  @ApiErrors(moveErrors(E.tenantNotFound, E.poolNotFound, E.moveNoop, E.poolKindMismatch, E.moveInProgress, E.tenantNotActive, E.tenantMigrating))
  request(@Param('id', UuidPipe) id: string, @Body() body: RequestMoveDto, @PlatformOperator() operator: string): Promise<TenantMoveView> {
    return this.moves.request(id, body, operator);
  }

  @Get('tenants/:id/moves')
  @ApiItemsResponse(TenantMoveView, "the tenant's moves, newest first")
  @ApiErrors(moveErrors(E.tenantNotFound))
  async list(@Param('id', UuidPipe) id: string): Promise<{ items: TenantMoveView[] }> {
    return { items: await this.moves.listForTenant(id) };
  }

  @Get('moves/:id')
  @ApiOkResponse({ type: TenantMoveView })
  @ApiErrors(moveErrors(E.moveNotFound))
  get(@Param('id', UuidPipe) id: string): Promise<TenantMoveView> {
    return this.moves.get(id);
  }

  @Post('moves/:id/cancel')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: TenantMoveView, description: 'cancellation requested; the move rolls back and ends `cancelled`' })
  @ApiErrors(moveErrors(E.moveNotFound, E.moveNotCancellable))
  cancel(@Param('id', UuidPipe) id: string, @PlatformOperator() operator: string): Promise<TenantMoveView> {
    return this.moves.cancel(id, operator);
  }
}
