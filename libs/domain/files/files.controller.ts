import { Controller, Delete, Get, Header, HttpCode, Param, Post, Query, StreamableFile, UploadedFile, UseInterceptors } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import { badRequest, UuidPipe, type Page } from '#strata/common';
import { attachmentDisposition } from '#strata/storage';
import { ListFilesQuery, type FileView } from './files.dto';
import { FilesService, type FileDownloadUrl } from './files.service';
import { UploadErrorsInterceptor } from './upload-errors.interceptor';

/** What multer's memory storage hands over; declared here rather than through multer's global types. */
interface UploadedPart {
  originalname: string;
  mimetype: string;
  buffer: Buffer;
}

// No guard decorators: the global tenant guard binds the tenant before any handler runs, and
// guards run before interceptors, so an unauthenticated upload is refused before it is parsed.
@Controller('files')
export class FilesController {
  constructor(private readonly files: FilesService) {}

  @Get()
  list(@Query() query: ListFilesQuery): Promise<Page<FileView>> {
    return this.files.list(query.limit, query.cursor);
  }

  // Buffered in memory by multer, bounded by FILES_MAX_BYTES (FilesModule's multer options), then
  // stored in one put. Streaming to storage would save that memory but would store a partial
  // object before the limit is known to hold, and S3 wants Content-Length up front; files larger
  // than a buffer should go straight to S3 (presigned PUT), not through the API.
  @Post()
  @UseInterceptors(UploadErrorsInterceptor, FileInterceptor('file'))
  upload(@UploadedFile() file: UploadedPart | undefined): Promise<FileView> {
    if (!file) throw badRequest('file_required', "send the file as multipart/form-data, in the field 'file'");
    return this.files.upload({ name: file.originalname, contentType: file.mimetype, body: file.buffer });
  }

  @Get(':id')
  get(@Param('id', UuidPipe) id: string): Promise<FileView> {
    return this.files.get(id);
  }

  // attachment + nosniff: an uploaded HTML or SVG file is downloaded, never rendered on our origin.
  @Get(':id/content')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'private, no-store')
  async content(@Param('id', UuidPipe) id: string): Promise<StreamableFile> {
    const { file, stream, size } = await this.files.openContent(id);
    return new StreamableFile(stream, { type: file.contentType, length: size, disposition: attachmentDisposition(file.name) });
  }

  @Get(':id/url')
  url(@Param('id', UuidPipe) id: string): Promise<FileDownloadUrl> {
    return this.files.downloadUrl(id);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.files.remove(id);
  }
}
