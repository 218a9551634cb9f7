// Public API of libs/platform/audit (a platform lib: apps, admin, moves; auth records through AUDIT_LOG).
export { AuditModule, AuditLogModule } from './audit.module';
export { AuditLog } from './audit.log';
export { verifyAuditChain, AUDIT_GENESIS_HASH, type AuditQuery, type AuditChainReport, type AuditChainBreak } from './audit-chain.verifier';
export { AuditErrorCode, auditErrors } from './audit.errors';
export { AuditEntryView, AuditActorView, AdminAuditQuery, TenantAuditQuery, type AuditFilter } from './audit.dto';
