import { HttpException, Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { catchError, throwError, type Observable } from 'rxjs';
import { ApiException, badRequest } from '#strata/common';
import { STORAGE_OPTIONS, type ResolvedStorageOptions } from '#strata/storage';

/**
 * Bound before FileInterceptor: gives multer's failures (which @nestjs/platform-express turns into
 * plain 400/413/415 HttpExceptions) the API's stable codes and a message saying what to send.
 */
@Injectable()
export class UploadErrorsInterceptor implements NestInterceptor {
  constructor(@Inject(STORAGE_OPTIONS) private readonly options: ResolvedStorageOptions) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(catchError((err: unknown) => throwError(() => this.translate(err))));
  }

  private translate(err: unknown): unknown {
    if (err instanceof ApiException || !(err instanceof HttpException)) return err;
    const multerCode = (err.cause as { code?: unknown } | undefined)?.code;
    switch (err.getStatus()) {
      case 413:
        return new ApiException(413, 'file_too_large', `a file may be at most ${this.options.maxBytes} bytes`);
      case 415:
        return new ApiException(415, 'unsupported_media_type', "send the file as multipart/form-data, in the field 'file'");
      case 400:
        return multerCode === 'LIMIT_UNEXPECTED_FILE'
          ? badRequest('unexpected_file_field', "send the file in the multipart field 'file'")
          : badRequest('invalid_multipart', `${err.message}; send one file in the multipart field 'file' and nothing else`);
      default:
        return err;
    }
  }
}
