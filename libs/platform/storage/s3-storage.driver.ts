import type { OnApplicationShutdown } from '@nestjs/common';
import { DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { assertObjectKey } from './object-key.validator';
import { attachmentDisposition } from './content-disposition.header';
import type { GetObjectOptions, ObjectInfo, PresignOptions, PutObjectOptions, StorageDriver, StoredObject } from './storage.driver';
import { StorageObjectNotFoundError, StorageRangeError } from './storage.errors';
import type { S3StorageOptions } from './storage.options';

// GetObject says NoSuchKey; HeadObject has no body, so only NotFound / a bare 404. A missing
// bucket is a configuration error and must not pass for a missing object.
function isMissingObject(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

function isInvalidRange(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'InvalidRange' || e?.Code === 'InvalidRange' || e?.$metadata?.httpStatusCode === 416;
}

/** Objects in one bucket under their full key; credentials from options or the AWS default chain. */
export class S3StorageDriver implements StorageDriver, OnApplicationShutdown {
  readonly name = 's3' as const;
  readonly client: S3Client;

  constructor(private readonly options: S3StorageOptions) {
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // The SDK's default CRC checksums send streams as aws-chunked with a trailer, which several
      // S3-compatible servers reject; AWS itself keeps the default.
      ...(options.endpoint ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
    });
  }

  async put(key: string, body: Buffer | Readable, options: PutObjectOptions): Promise<void> {
    assertObjectKey(key);
    if (!Buffer.isBuffer(body) && options.size === undefined) {
      throw new Error(`storing ${key}: S3 needs the size of a stream body up front (PutObject sends Content-Length); pass options.size`);
    }
    if (Buffer.isBuffer(body) && options.size !== undefined && body.length !== options.size) {
      throw new Error(`storing ${key}: got ${body.length} bytes, expected ${options.size}`);
    }
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: key,
        Body: body,
        ContentType: options.contentType,
        ContentLength: options.size ?? (body as Buffer).length,
      }),
    );
  }

  async get(key: string, options: GetObjectOptions = {}): Promise<StoredObject> {
    assertObjectKey(key);
    const { range } = options;
    if (range && (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start)) {
      throw new StorageRangeError(key, (await this.head(key)).size);
    }
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      // In Node the body is the response's IncomingMessage (a Readable) with SDK helpers mixed in.
      if (!(out.Body instanceof Readable)) throw new Error(`S3 GetObject for ${key} returned no readable body`);
      if (!range) return { stream: out.Body, contentType: out.ContentType, size: out.ContentLength ?? 0 };
      // `bytes 0-99/1234`: the bytes sent (S3 clamps the end) and the whole object's size.
      const sent = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.ContentRange ?? '');
      if (!sent) {
        // An S3-compatible server that ignored the Range sends the whole object: say so, not a range.
        return { stream: out.Body, contentType: out.ContentType, size: out.ContentLength ?? 0 };
      }
      return {
        stream: out.Body,
        contentType: out.ContentType,
        size: Number(sent[3]),
        range: { start: Number(sent[1]), end: Number(sent[2]) },
      };
    } catch (err) {
      if (isMissingObject(err)) throw new StorageObjectNotFoundError(key);
      if (range && isInvalidRange(err)) throw new StorageRangeError(key, (await this.head(key)).size);
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo> {
    assertObjectKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return { contentType: out.ContentType, size: out.ContentLength ?? 0 };
    } catch (err) {
      if (isMissingObject(err)) throw new StorageObjectNotFoundError(key);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
  }

  async list(prefix: string): Promise<string[]> {
    if (!prefix.endsWith('/')) throw new Error('a prefix must end with /');
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  /** Lists, then deletes in batches of 1,000 (DeleteObjects' limit). */
  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const out = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.options.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
      if (out.Errors?.length) throw new Error(`deleting ${out.Errors.length} objects under ${prefix} failed: ${out.Errors[0].Code} ${out.Errors[0].Message}`);
    }
    return keys.length;
  }

  /** Signed locally (no request to S3): the URL does not prove the object exists. */
  presignedGetUrl(key: string, options: PresignOptions): Promise<string> {
    assertObjectKey(key);
    const command = new GetObjectCommand({
      Bucket: this.options.bucket,
      Key: key,
      ...(options.filename !== undefined ? { ResponseContentDisposition: attachmentDisposition(options.filename) } : {}),
      ...(options.contentType !== undefined ? { ResponseContentType: options.contentType } : {}),
    });
    return getSignedUrl(this.client, command, { expiresIn: options.expiresInSeconds });
  }

  onApplicationShutdown(): void {
    this.client.destroy();
  }
}
