import { isAbsolute, resolve } from 'node:path';

export type StorageDriverName = 'local' | 's3';

/** Static S3 credentials; without them the AWS SDK's default chain is used (env, profile, SSO, IMDS, …). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3StorageOptions {
  bucket: string;
  region: string;
  /** An S3-compatible endpoint (MinIO, R2, Ceph …); unset for AWS itself. */
  endpoint?: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`; most S3-compatible servers need it. */
  forcePathStyle: boolean;
  credentials?: S3Credentials;
}

/** Options of StorageModule.forRoot(); anything unset comes from the environment, then the defaults. */
export interface StorageModuleOptions {
  driver?: StorageDriverName;
  /** Local driver: directory holding every tenant's prefix. */
  root?: string;
  s3?: Partial<S3StorageOptions>;
  /** Largest upload a domain module accepts (files: the multipart limit). */
  maxBytes?: number;
  /** Default lifetime of a presigned download URL. */
  urlTtlSeconds?: number;
  /**
   * Local driver: the API's public origin (and path prefix, behind a proxy) that signed download
   * URLs start with. Unset: the origin the request for the URL came to.
   */
  publicUrl?: string;
}

interface CommonOptions {
  maxBytes: number;
  urlTtlSeconds: number;
  /** Without a trailing slash. */
  publicUrl?: string;
}
export type ResolvedStorageOptions =
  | (CommonOptions & { driver: 'local'; root: string })
  | (CommonOptions & { driver: 's3'; s3: S3StorageOptions });

export const STORAGE_OPTIONS = Symbol('STORAGE_OPTIONS');
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_URL_TTL_SECONDS = 300;
/** SigV4 presigned URLs cannot outlive 7 days. */
export const MAX_URL_TTL_SECONDS = 7 * 24 * 3600;

function opt(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key];
  return v === undefined || v === '' ? undefined : v;
}

function int(given: number | undefined, env: NodeJS.ProcessEnv, key: string, fallback: number, min: number, max: number): number {
  const raw = given ?? opt(env, key);
  if (raw === undefined) return fallback;
  const n = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`config: ${key} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function bool(given: boolean | undefined, env: NodeJS.ProcessEnv, key: string, fallback: boolean): boolean {
  if (given !== undefined) return given;
  const raw = opt(env, key)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`config: ${key} must be true or false, got ${JSON.stringify(raw)}`);
}

function credentials(given: S3Credentials | undefined, env: NodeJS.ProcessEnv): S3Credentials | undefined {
  if (given) return given;
  const accessKeyId = opt(env, 'S3_ACCESS_KEY_ID');
  const secretAccessKey = opt(env, 'S3_SECRET_ACCESS_KEY');
  if (!accessKeyId && !secretAccessKey) return undefined;
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('config: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together (or neither, for the AWS default credential chain)');
  }
  const sessionToken = opt(env, 'S3_SESSION_TOKEN');
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

function s3Options(given: Partial<S3StorageOptions>, env: NodeJS.ProcessEnv): S3StorageOptions {
  const bucket = given.bucket ?? opt(env, 'S3_BUCKET');
  if (!bucket) throw new Error('config: S3_BUCKET is required when FILES_DRIVER=s3');
  const region = given.region ?? opt(env, 'S3_REGION') ?? opt(env, 'AWS_REGION');
  if (!region) throw new Error('config: S3_REGION (or AWS_REGION) is required when FILES_DRIVER=s3');
  const endpoint = given.endpoint ?? opt(env, 'S3_ENDPOINT');
  if (endpoint !== undefined) {
    let protocol: string | undefined;
    try {
      protocol = new URL(endpoint).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new Error(`config: S3_ENDPOINT must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
    }
  }
  const creds = credentials(given.credentials, env);
  return {
    bucket,
    region,
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: bool(given.forcePathStyle, env, 'S3_FORCE_PATH_STYLE', false),
    ...(creds ? { credentials: creds } : {}),
  };
}

/** An http(s) origin with an optional path, no query or fragment; returned without a trailing slash. */
function publicUrlOf(given: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const raw = given ?? opt(env, 'FILES_PUBLIC_URL');
  if (raw === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || url.username || url.password) {
    throw new Error(`config: FILES_PUBLIC_URL must be an http(s) URL without query, fragment or credentials (e.g. https://api.example.com), got ${JSON.stringify(raw)}`);
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

/**
 * forRoot() arguments first, then the environment, then defaults; validated once at startup so a
 * bad value stops the process with the variable's name instead of failing the first upload.
 */
export function resolveStorageOptions(options: StorageModuleOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedStorageOptions {
  const driver = options.driver ?? opt(env, 'FILES_DRIVER') ?? 'local';
  const common: CommonOptions = {
    maxBytes: int(options.maxBytes, env, 'FILES_MAX_BYTES', DEFAULT_MAX_BYTES, 1, Number.MAX_SAFE_INTEGER),
    urlTtlSeconds: int(options.urlTtlSeconds, env, 'FILES_URL_TTL_SECONDS', DEFAULT_URL_TTL_SECONDS, 1, MAX_URL_TTL_SECONDS),
  };
  const publicUrl = publicUrlOf(options.publicUrl, env);
  if (publicUrl !== undefined) common.publicUrl = publicUrl;
  if (driver === 'local') {
    const root = options.root ?? opt(env, 'FILES_ROOT') ?? '.data/files';
    // Relative roots are taken from the working directory once, so a later chdir cannot move them.
    return { ...common, driver, root: isAbsolute(root) ? resolve(root) : resolve(process.cwd(), root) };
  }
  if (driver === 's3') return { ...common, driver, s3: s3Options(options.s3 ?? {}, env) };
  throw new Error(`config: FILES_DRIVER must be local or s3, got ${JSON.stringify(driver)}`);
}
