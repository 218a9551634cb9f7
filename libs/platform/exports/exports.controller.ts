import { Controller, Get, HttpCode, Param, Post, Res, StreamableFile } from '@nestjs/common';
import type { Response } from 'express';
import { ApiAcceptedResponse, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiItemsResponse, UuidPipe } from '#strata/common';
import { PlatformAdmin, PlatformOperator, RefusedUnderImpersonation, RequireRole } from '#strata/auth';
import { attachmentDisposition } from '#strata/storage';
import { TenantContext } from '#strata/tenancy/platform';
import { ExportErrorCode as E, exportErrors } from './exports.errors';
import { ExportsService, type ExportDownload } from './exports.service';
import { TenantExportView } from './tenant-export.types';

const ARCHIVE_RESPONSE = {
  description: 'the archive (.tar.gz: manifest.json, tables/*.jsonl, files/…); `Digest` carries its sha-256',
  schema: { type: 'string', format: 'binary' },
} as const;

function send(res: Response, d: ExportDownload): StreamableFile {
  // RFC 3230 instance digest: a client checks the whole download against the export record.
  res.setHeader('Digest', `sha-256=${Buffer.from(d.sha256, 'hex').toString('base64')}`);
  return new StreamableFile(d.stream, { type: 'application/gzip', length: d.bytes, disposition: attachmentDisposition(d.filename) });
}

/** Operators export any tenant (libs/platform/exports/README.md). */
@Controller('admin')
@PlatformAdmin()
@ApiTags('admin: exports')
export class ExportsAdminController {
  constructor(private readonly exports: ExportsService) {}

  @Post('tenants/:id/exports')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: TenantExportView, description: 'queued; an executor produces the archive (follow it with GET /admin/exports/{id})' })
  @ApiErrors(exportErrors(E.tenantNotFound, E.tenantNotActive))
  request(@Param('id', UuidPipe) id: string, @PlatformOperator() operator: string): Promise<TenantExportView> {
    return this.exports.request(id, `operator:${operator}`, { type: 'operator', id: operator });
  }

  @Get('tenants/:id/exports')
  @ApiItemsResponse(TenantExportView, "the tenant's exports, newest first (the last 50)")
  @ApiErrors(exportErrors(E.tenantNotFound))
  async list(@Param('id', UuidPipe) id: string): Promise<{ items: TenantExportView[] }> {
    return { items: await this.exports.listForTenant(id) };
  }

  @Get('exports/:id')
  @ApiOkResponse({ type: TenantExportView })
  @ApiErrors(exportErrors(E.exportNotFound))
  get(@Param('id', UuidPipe) id: string): Promise<TenantExportView> {
    return this.exports.get(id);
  }

  @Get('exports/:id/archive')
  @ApiProduces('application/gzip')
  @ApiOkResponse(ARCHIVE_RESPONSE)
  @ApiErrors(exportErrors(E.exportNotFound, E.exportNotReady))
  async archive(@Param('id', UuidPipe) id: string, @PlatformOperator() operator: string, @Res({ passthrough: true }) res: Response): Promise<StreamableFile> {
    return send(res, await this.exports.download(id, { type: 'operator', id: operator }));
  }
}

/**
 * A tenant's owners export their own tenant: the data-portability case. Not under impersonation:
 * an operator who needs a tenant's data exports it through the admin API, as themselves.
 */
@Controller('export')
@RequireRole('owner')
@RefusedUnderImpersonation()
@ApiTags('export')
export class TenantExportController {
  constructor(
    private readonly exports: ExportsService,
    private readonly context: TenantContext,
  ) {}

  @Post()
  @HttpCode(202)
  @ApiAcceptedResponse({ type: TenantExportView, description: 'queued; follow it with GET /export/{id}, download it from GET /export/{id}/archive' })
  request(): Promise<TenantExportView> {
    const scope = this.context.requireTenant('requesting an export', 'exports');
    return this.exports.request(scope.tenant.id, `owner:${scope.userId}`, { type: 'user', id: scope.userId });
  }

  @Get()
  @ApiItemsResponse(TenantExportView, "the tenant's exports, newest first (the last 50)")
  async list(): Promise<{ items: TenantExportView[] }> {
    return { items: await this.exports.listForTenant(this.context.requireTenant('listing exports', 'exports').tenant.id) };
  }

  @Get(':id')
  @ApiOkResponse({ type: TenantExportView })
  @ApiErrors(exportErrors(E.exportNotFound))
  get(@Param('id', UuidPipe) id: string): Promise<TenantExportView> {
    return this.exports.getForTenant(id, this.context.requireTenant('reading an export', 'exports').tenant.id);
  }

  @Get(':id/archive')
  @ApiProduces('application/gzip')
  @ApiOkResponse(ARCHIVE_RESPONSE)
  @ApiErrors(exportErrors(E.exportNotFound, E.exportNotReady))
  async archive(@Param('id', UuidPipe) id: string, @Res({ passthrough: true }) res: Response): Promise<StreamableFile> {
    const scope = this.context.requireTenant('downloading an export', 'exports');
    return send(res, await this.exports.downloadForTenant(id, scope.tenant.id, { type: 'user', id: scope.userId }));
  }
}
