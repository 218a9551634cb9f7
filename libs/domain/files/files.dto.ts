import { ApiProperty, ApiSchema, type SchemaObject } from '@nestjs/swagger';
import { badRequest, PageQuery } from '#strata/common';
import type { StoredFile } from './stored-file.entity';

export const MAX_FILE_NAME_LENGTH = 255;

// C0 and C1 controls, DEL, and the bidi controls that make "gpj.exe" display as "exe.jpg".
const UNSAFE_NAME_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** `GET /files`: paging only, for now. */
export class ListFilesQuery extends PageQuery {}

/** A file as the API shows it: the tenant is implied by the request and the storage key stays inside. */
@ApiSchema({ name: 'File' })
export class FileView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ description: "the uploader's file name, in NFC" }) name: string;
  @ApiProperty({ example: 'image/png' }) contentType: string;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'bytes' }) size: number;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
}

/** The documented shape of FilesService's FileDownloadUrl. */
@ApiSchema({ name: 'FileDownloadUrl' })
export class FileDownloadUrlView {
  @ApiProperty({ format: 'uri', description: 'a presigned GET of the content, valid until expiresAt' }) url: string;
  @ApiProperty({ type: String, format: 'date-time' }) expiresAt: Date;
}

/** `POST /files`: multipart/form-data with one file part. */
export const UPLOAD_BODY_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['file'],
  properties: { file: { type: 'string', format: 'binary', description: `the file; its part's filename (at most ${MAX_FILE_NAME_LENGTH} characters) becomes its name` } },
};

export const toFileView = (f: StoredFile): FileView => ({
  id: f.id,
  name: f.name,
  contentType: f.contentType,
  size: f.sizeBytes,
  createdAt: f.createdAt,
});

/**
 * The uploader's file name in NFC, or 400 `invalid_filename`. It is only metadata (keys are ids),
 * but it is echoed in headers and UIs, so what could spoof or split those is refused, not repaired.
 */
export function validFileName(raw: unknown): string {
  const invalid = (why: string) => badRequest('invalid_filename', `file name ${why}`);
  if (typeof raw !== 'string' || raw.length === 0) throw invalid('is required (send a filename in the part header)');
  if (/\p{Cs}/u.test(raw)) throw invalid('is not valid Unicode');
  const name = raw.normalize('NFC');
  if ([...name].length > MAX_FILE_NAME_LENGTH) throw invalid(`must be at most ${MAX_FILE_NAME_LENGTH} characters`);
  if (UNSAFE_NAME_CHARS.test(name)) throw invalid('must not contain control or bidirectional-override characters');
  if (/[\\/]/.test(name)) throw invalid('must be a bare name, without / or \\');
  if (name.trim() === '' || name === '.' || name === '..') throw invalid('must name something');
  return name;
}
