export { LeaseKeeper, LeaseLost, LEASE_MARGIN_MS, type LeaseKeeperOptions } from './lease.keeper';
export { LeasedExecutor } from './leased.executor';
export { PollLoop, leaseOwnerId, type PollLoopOptions } from './poll.loop';
export { CHECKPOINT_COMMIT, LeasedTable, msFromNow, rowsOf, type ClaimOptions, type LeasedTableShape, type ReleaseOptions } from './leased-table.sql';
