import { Controller, Delete, Get, Header, HttpCode, Param, Post, Query, Req, Res, StreamableFile, UploadedFile, UseInterceptors } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import type { Request, Response } from 'express';
import { ApiBody, ApiConsumes, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiPageResponse, badRequest, UuidPipe, type Page } from '#strata/common';
import { attachmentDisposition, StorageErrorCode } from '#strata/storage';
import { Idempotent } from '#strata/idempotency';
import { PlansErrorCode } from '#strata/plans';
import type { DownloadConditions } from './file-download.conditions';
import { FileDownloadUrlView, FileView, ListFilesQuery, UPLOAD_BODY_SCHEMA } from './files.dto';
import { FilesErrorCode } from './files.errors';
import { FilesService, type FileContent, type FileDownloadUrl } from './files.service';
import { UploadErrorsInterceptor } from './upload-errors.interceptor';
import { PublicRoute, RequireRole } from '#strata/auth';

const header = (req: Request, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
};

/** The conditional and range headers of a download request. */
const conditionsOf = (req: Request): DownloadConditions => ({
  range: header(req, 'range'),
  ifRange: header(req, 'if-range'),
  ifNoneMatch: header(req, 'if-none-match'),
});

/**
 * The answer to a download: 304 without a body, or the bytes with their validators; 206 with
 * Content-Range for a range. Accept-Ranges tells clients (players, download managers, resumes)
 * they may ask for ranges.
 */
function send(res: Response, content: FileContent): StreamableFile | undefined {
  res.setHeader('ETag', content.etag);
  res.setHeader('Accept-Ranges', 'bytes');
  if (content.status === 304) {
    res.status(304);
    return undefined;
  }
  const { file, stream, size, range } = content;
  if (range) {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
  }
  const length = range ? range.end - range.start + 1 : size;
  return new StreamableFile(stream, { type: file.contentType, length, disposition: attachmentDisposition(file.name) });
}

/** What multer's memory storage hands over; declared here rather than through multer's global types. */
interface UploadedPart {
  originalname: string;
  mimetype: string;
  buffer: Buffer;
}

// The global tenant guard binds the tenant before any handler runs (@RequireRole says who may call), and
// guards run before interceptors, so an unauthenticated upload is refused before it is parsed.
@Controller('files')
@ApiTags('files')
export class FilesController {
  constructor(private readonly files: FilesService) {}

  @Get()
  @RequireRole('member')
  @ApiPageResponse(FileView)
  list(@Query() query: ListFilesQuery): Promise<Page<FileView>> {
    return this.files.list(query.limit, query.cursor);
  }

  // Buffered in memory by multer, bounded by FILES_MAX_BYTES (FilesModule's multer options), then
  // stored in one put. Streaming to storage would save that memory but would store a partial
  // object before the limit is known to hold, and S3 wants Content-Length up front; files larger
  // than a buffer should go straight to S3 (presigned PUT), not through the API.
  //
  // @Idempotent() sits above UseInterceptors so it runs after FileInterceptor: the upload is parsed
  // (and part of the key's fingerprint) before the unit opens. With a key, the object put runs
  // inside that unit (one connection held for the put; without a key nothing changes).
  @Post()
  @RequireRole('member')
  @Idempotent()
  @UseInterceptors(UploadErrorsInterceptor, FileInterceptor('file'))
  @ApiConsumes('multipart/form-data')
  @ApiBody({ schema: UPLOAD_BODY_SCHEMA })
  @ApiCreatedResponse({ type: FileView })
  @ApiErrors({
    400: [FilesErrorCode.fileRequired, FilesErrorCode.invalidFilename, FilesErrorCode.unexpectedFileField, FilesErrorCode.invalidMultipart],
    402: [PlansErrorCode.planLimitReached],
    413: [FilesErrorCode.fileTooLarge],
    415: [FilesErrorCode.unsupportedMediaType],
  })
  upload(@UploadedFile() file: UploadedPart | undefined): Promise<FileView> {
    if (!file) throw badRequest('file_required', "send the file as multipart/form-data, in the field 'file'");
    return this.files.upload({ name: file.originalname, contentType: file.mimetype, body: file.buffer });
  }

  // Declared before ':id', which would otherwise take "signed" for an id. Public: the token is the
  // credential, and it names the tenant (SignedDownloads.open enters it); the wire's tenant, a
  // bearer token or a path prefix play no part. In the query string, not the path: request logs and
  // trace spans keep only the path, so the token is not written anywhere while it is valid.
  // no-cache (not no-store): a browser keeps an <img> and revalidates it with If-None-Match (304).
  @Get('signed')
  @PublicRoute()
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'private, no-cache')
  @Header('Referrer-Policy', 'no-referrer')
  @ApiQuery({ name: 'token', required: true, description: 'the signed download token from GET /files/{id}/url' })
  @ApiProduces('*/*')
  @ApiOkResponse({ description: "the content, as an attachment, in the file's own content type", schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 206, description: 'the requested byte range, with Content-Range', schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 304, description: 'not modified (If-None-Match matched the ETag)' })
  @ApiErrors({
    403: [StorageErrorCode.signedUrlInvalid, StorageErrorCode.signedUrlExpired],
    404: [FilesErrorCode.fileNotFound, 'tenant_not_found'],
    416: [FilesErrorCode.rangeNotSatisfiable],
  })
  async signed(@Query('token') token: unknown, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<StreamableFile | undefined> {
    return send(res, await this.files.openSigned(token, conditionsOf(req)));
  }

  @Get(':id')
  @RequireRole('member')
  @ApiOkResponse({ type: FileView })
  @ApiErrors({ 404: [FilesErrorCode.fileNotFound] })
  get(@Param('id', UuidPipe) id: string): Promise<FileView> {
    return this.files.get(id);
  }

  // attachment + nosniff: an uploaded HTML or SVG file is downloaded, never rendered on our origin.
  @Get(':id/content')
  @RequireRole('member')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'private, no-store')
  @ApiProduces('*/*')
  @ApiOkResponse({ description: "the content, as an attachment, in the file's own content type", schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 206, description: 'the requested byte range (`Range: bytes=a-b`), with Content-Range', schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 304, description: 'not modified (If-None-Match matched the ETag)' })
  @ApiErrors({ 404: [FilesErrorCode.fileNotFound], 416: [FilesErrorCode.rangeNotSatisfiable] })
  async content(@Param('id', UuidPipe) id: string, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<StreamableFile | undefined> {
    return send(res, await this.files.openContent(id, conditionsOf(req)));
  }

  /** `{url, expiresAt}`: S3's presigned GET, or on the local driver this API's signed route. */
  @Get(':id/url')
  @RequireRole('member')
  @ApiOkResponse({ type: FileDownloadUrlView, description: "a download URL that needs no token: S3's presigned GET, or this API's signed route on the local driver; valid FILES_URL_TTL_SECONDS" })
  @ApiErrors({ 404: [FilesErrorCode.fileNotFound] })
  url(@Param('id', UuidPipe) id: string, @Req() req: Request): Promise<FileDownloadUrl> {
    return this.files.downloadUrl(id, `${req.protocol}://${req.get('host') ?? 'localhost'}`);
  }

  @Delete(':id')
  @RequireRole('admin')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'deleted' })
  @ApiErrors({ 404: [FilesErrorCode.fileNotFound] })
  remove(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.files.remove(id);
  }
}
