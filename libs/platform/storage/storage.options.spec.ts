import { join } from 'node:path';
import { DEFAULT_MAX_BYTES, DEFAULT_URL_TTL_SECONDS, resolveStorageOptions } from './storage.options';

describe('storage options', () => {
  it('defaults to the local driver under <cwd>/.data/files, 10 MiB and 300 s', () => {
    expect(resolveStorageOptions({}, {})).toEqual({
      driver: 'local',
      root: join(process.cwd(), '.data/files'),
      maxBytes: DEFAULT_MAX_BYTES,
      urlTtlSeconds: DEFAULT_URL_TTL_SECONDS,
    });
    expect(DEFAULT_MAX_BYTES).toBe(10 * 1024 * 1024);
  });

  it('takes forRoot() arguments over the environment', () => {
    const o = resolveStorageOptions({ root: '/srv/a', maxBytes: 5 }, { FILES_ROOT: '/srv/b', FILES_MAX_BYTES: '7' });
    expect(o).toMatchObject({ driver: 'local', root: '/srv/a', maxBytes: 5 });
  });

  it('reads the S3 settings from the environment', () => {
    const o = resolveStorageOptions(
      {},
      {
        FILES_DRIVER: 's3',
        S3_BUCKET: 'files',
        S3_REGION: 'eu-central-1',
        S3_ENDPOINT: 'http://127.0.0.1:9000',
        S3_FORCE_PATH_STYLE: 'true',
        S3_ACCESS_KEY_ID: 'id',
        S3_SECRET_ACCESS_KEY: 'secret',
        FILES_URL_TTL_SECONDS: '60',
      },
    );
    expect(o).toEqual({
      driver: 's3',
      maxBytes: DEFAULT_MAX_BYTES,
      urlTtlSeconds: 60,
      s3: {
        bucket: 'files',
        region: 'eu-central-1',
        endpoint: 'http://127.0.0.1:9000',
        forcePathStyle: true,
        credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
      },
    });
  });

  it('leaves credentials to the AWS default chain when none are configured', () => {
    const o = resolveStorageOptions({}, { FILES_DRIVER: 's3', S3_BUCKET: 'files', AWS_REGION: 'us-east-1' });
    expect(o).toMatchObject({ driver: 's3', s3: { region: 'us-east-1', forcePathStyle: false } });
    expect(o.driver === 's3' && o.s3.credentials).toBeUndefined();
  });

  it('takes FILES_PUBLIC_URL as the origin of signed download URLs, without a trailing slash', () => {
    expect(resolveStorageOptions({}, { FILES_PUBLIC_URL: 'https://api.example.com/' }).publicUrl).toBe('https://api.example.com');
    expect(resolveStorageOptions({}, { FILES_PUBLIC_URL: 'https://example.com/strata/api/' }).publicUrl).toBe('https://example.com/strata/api');
    expect(resolveStorageOptions({}, {}).publicUrl).toBeUndefined();
  });

  it.each([
    [{ FILES_PUBLIC_URL: 'api.example.com' }, /config: FILES_PUBLIC_URL must be an http\(s\) URL/],
    [{ FILES_PUBLIC_URL: 'https://api.example.com/?x=1' }, /config: FILES_PUBLIC_URL/],
    [{ FILES_PUBLIC_URL: 'ftp://api.example.com' }, /config: FILES_PUBLIC_URL/],
    [{ FILES_DRIVER: 'ftp' }, /config: FILES_DRIVER must be local or s3/],
    [{ FILES_MAX_BYTES: '10MB' }, /config: FILES_MAX_BYTES must be an integer/],
    [{ FILES_MAX_BYTES: '0' }, /config: FILES_MAX_BYTES/],
    [{ FILES_URL_TTL_SECONDS: '604801' }, /config: FILES_URL_TTL_SECONDS must be an integer in 1\.\.604800/],
    [{ FILES_DRIVER: 's3', S3_REGION: 'x' }, /config: S3_BUCKET is required/],
    [{ FILES_DRIVER: 's3', S3_BUCKET: 'b' }, /config: S3_REGION/],
    [{ FILES_DRIVER: 's3', S3_BUCKET: 'b', S3_REGION: 'x', S3_ENDPOINT: 'minio:9000' }, /config: S3_ENDPOINT must be an http\(s\) URL/],
    [{ FILES_DRIVER: 's3', S3_BUCKET: 'b', S3_REGION: 'x', S3_FORCE_PATH_STYLE: 'yes' }, /config: S3_FORCE_PATH_STYLE must be true or false/],
    [{ FILES_DRIVER: 's3', S3_BUCKET: 'b', S3_REGION: 'x', S3_ACCESS_KEY_ID: 'id' }, /config: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together/],
  ])('refuses %j at startup, naming the variable', (env, message) => {
    expect(() => resolveStorageOptions({}, env)).toThrow(message);
  });
});
