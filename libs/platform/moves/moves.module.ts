import { Module } from '@nestjs/common';
import { AuditLogModule } from '#strata/audit';
import { MoveExecutor } from './move.executor';
import { MovesController } from './moves.controller';
import { MovesService } from './moves.service';
import { TenantMovesRepository } from './tenant-moves.repository';

/** Online tenant moves: the admin API and the executor every API/worker process runs. */
@Module({
  imports: [AuditLogModule],
  controllers: [MovesController],
  providers: [TenantMovesRepository, MoveExecutor, MovesService],
  exports: [MovesService, MoveExecutor],
})
export class MovesModule {}

/** The same without HTTP routes: the worker and the CLI run moves but serve no API. */
@Module({
  imports: [AuditLogModule],
  providers: [TenantMovesRepository, MoveExecutor, MovesService],
  exports: [MovesService, MoveExecutor],
})
export class MovesRunnerModule {}
