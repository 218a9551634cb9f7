import { errorCatalogue } from '#strata/common';

/** Every error code the export and restore API answers, in one place (OpenAPI and tests list them from here). */
export const ExportErrorCode = {
  tenantNotFound: 'tenant_not_found',
  exportNotFound: 'export_not_found',
  tenantNotActive: 'tenant_not_active',
  /** 409: the archive of an export that is not `done` (queued, running or failed) cannot be downloaded or restored. */
  exportNotReady: 'export_not_ready',
  /** 422: the archive does not match its manifest or the export record (tampered, truncated, or not an export). */
  exportArchiveInvalid: 'export_archive_invalid',
  /** 409: the archive's rows are at another tenant schema version than this release. */
  exportSchemaMismatch: 'export_schema_mismatch',
} as const;
export type ExportErrorCode = (typeof ExportErrorCode)[keyof typeof ExportErrorCode];

const STATUS: Record<ExportErrorCode, number> = {
  tenant_not_found: 404,
  export_not_found: 404,
  tenant_not_active: 409,
  export_not_ready: 409,
  export_archive_invalid: 422,
  export_schema_mismatch: 409,
};

const catalogue = errorCatalogue(STATUS);
/** Raises one of the codes above with its status. */
export const exportError = catalogue.error;
/** `@ApiErrors(exportErrors(…))`: the codes under their statuses, as the OpenAPI document lists them. */
export const exportErrors = catalogue.errors;
