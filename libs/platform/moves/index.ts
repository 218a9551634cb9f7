// Public API of libs/platform/moves (a platform lib: admin, apps, CLI).
export { MovesModule, MovesRunnerModule } from './moves.module';
export { MovesService } from './moves.service';
export { MoveExecutor, ExecutorKilled, MOVE_EXECUTOR_HOOKS, type MoveExecutorHooks, type MoveStep } from './move.executor';
export { MoveErrorCode, moveErrors } from './moves.errors';
export { RequestMoveDto } from './moves.dto';
export { MOVE_PHASES, TERMINAL_PHASES, type MovePhase, TenantMoveView, TableCheck } from './tenant-move.types';
