import { ApiException, notFound } from '#strata/common';

/**
 * Every error code libs/domain/files answers, in one place (OpenAPI and tests list them from here;
 * signed URLs add storage's `signed_url_invalid` and `signed_url_expired`, see StorageErrorCode).
 */
export const FilesErrorCode = {
  /** 404: no file with that id in this tenant (or its object is gone). */
  fileNotFound: 'file_not_found',
  /** 400: the multipart request has no part named `file`. */
  fileRequired: 'file_required',
  /** 400: the part's file name is missing, too long, not valid Unicode, or holds control or path characters. */
  invalidFilename: 'invalid_filename',
  /** 400: a file part under another field name. */
  unexpectedFileField: 'unexpected_file_field',
  /** 400: a multipart body multer cannot read (too many parts, truncated …). */
  invalidMultipart: 'invalid_multipart',
  /** 413: larger than FILES_MAX_BYTES. */
  fileTooLarge: 'file_too_large',
  /** 415: the upload is not multipart/form-data. */
  unsupportedMediaType: 'unsupported_media_type',
  /** 416: a Range that starts past the end of the file. */
  rangeNotSatisfiable: 'range_not_satisfiable',
} as const;
export type FilesErrorCode = (typeof FilesErrorCode)[keyof typeof FilesErrorCode];

/** 404 for a missing id and for another tenant's alike: nothing tells them apart. */
export const fileNotFound = () => notFound(FilesErrorCode.fileNotFound, 'file not found');

/** 416 with `Content-Range: bytes *\/{size}` (RFC 9110 §15.5.17), so the client learns the size. */
export const rangeNotSatisfiable = (size: number) =>
  new ApiException(416, FilesErrorCode.rangeNotSatisfiable, `the file has ${size} bytes; ask for a range that starts before its end, e.g. bytes=0-`, {
    'Content-Range': `bytes */${size}`,
  });
