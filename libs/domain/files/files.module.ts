import { Module } from '@nestjs/common';
import { MulterModule } from '@nestjs/platform-express';
import multer from 'multer';
import { TenancyModule } from '#strata/tenancy';
import { IdempotencyModule } from '#strata/idempotency';
import { STORAGE_OPTIONS, type ResolvedStorageOptions } from '#strata/storage';
import { FilesController } from './files.controller';
import { FilesRepository } from './files.repository';
import { FilesService } from './files.service';
import { StoredFile } from './stored-file.entity';
import { UploadErrorsInterceptor } from './upload-errors.interceptor';

/** Needs StorageModule.forRoot() in the application (TenantStorage and the upload limit). */
@Module({
  imports: [
    TenancyModule.forFeature([StoredFile]),
    IdempotencyModule,
    // The limit is configuration, so it cannot sit in FileInterceptor's decorator arguments.
    MulterModule.registerAsync({
      inject: [STORAGE_OPTIONS],
      useFactory: (o: ResolvedStorageOptions) => ({
        storage: multer.memoryStorage(),
        // Browsers send the filename parameter as raw UTF-8; busboy's default would read it as latin1.
        defParamCharset: 'utf8',
        limits: { fileSize: o.maxBytes, files: 1, fields: 0, parts: 1 },
      }),
    }),
  ],
  controllers: [FilesController],
  providers: [FilesRepository, FilesService, UploadErrorsInterceptor],
  exports: [FilesService],
})
export class FilesModule {}
