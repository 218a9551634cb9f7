// Public API of libs/domain/files. The app mounts FilesModule (and StorageModule.forRoot()); FilesService
// is for in-process callers.
export { FilesModule } from './files.module';
export { FilesService, type NewUpload, type FileContent, type FileDownloadUrl } from './files.service';
export { StoredFile } from './stored-file.entity';
export { ListFilesQuery, type FileView } from './files.dto';
export { FilesErrorCode } from './files.errors';
