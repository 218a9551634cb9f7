import { createHash } from 'node:crypto';
import { InvalidIdempotencyKeyError } from './idempotency.errors';

/** The request header a client sends (Node lowercases header names). */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Set on an answer that was replayed from a stored one, not produced by running the request again. */
export const IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed';

// Printable ASCII, space included (Stripe's rule); Node already trimmed the value's ends.
const KEY = /^[\x20-\x7e]{1,255}$/;

/**
 * The key of a request, or undefined when it sent none. Anything else than one value of 1–255
 * printable ASCII characters is refused (400), before any connection is taken.
 */
export function parseIdempotencyKey(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) throw new InvalidIdempotencyKeyError('was sent more than once');
  if (raw.length === 0) throw new InvalidIdempotencyKeyError('is empty');
  if (raw.length > 255) throw new InvalidIdempotencyKeyError(`is ${raw.length} characters long`);
  if (!KEY.test(raw)) throw new InvalidIdempotencyKeyError('contains a character that is not printable ASCII');
  return raw;
}

/**
 * The row id of a key: its SHA-256's first 128 bits written as a UUID. Deterministic, so the table's
 * primary key (tenant_id, id) is the uniqueness of (tenant, key) — the index a concurrent duplicate
 * waits on — and rows copy between homes by the one-shape upsert on (tenant_id, id). Two keys of one
 * tenant would have to collide in 128 bits of SHA-256 to share a row.
 */
export function idempotencyKeyRowId(key: string): string {
  const h = createHash('sha256').update(key, 'utf8').digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** What makes two requests "the same request" for a key. */
export interface RequestShape {
  method: string;
  /** The route's pattern, e.g. `/projects/:id/tasks` (the same however the tenant was addressed). */
  route: string;
  params: unknown;
  query: unknown;
  body: unknown;
  /** Uploaded files (multer's `req.file` / `req.files`), by content. */
  files?: UploadedFileLike[];
}

export interface UploadedFileLike {
  fieldname?: string;
  originalname?: string;
  mimetype?: string;
  size?: number;
  buffer?: Buffer;
}

/**
 * SHA-256 (hex) of the request's canonical JSON: object keys sorted at every level, so the same
 * body sent with its fields in another order (another client library) is the same request; files
 * by name, type, size and the SHA-256 of their bytes.
 */
export function requestFingerprint(shape: RequestShape): string {
  const files = (shape.files ?? []).map((f) => ({
    field: f.fieldname ?? null,
    name: f.originalname ?? null,
    type: f.mimetype ?? null,
    size: f.size ?? f.buffer?.length ?? null,
    sha256: Buffer.isBuffer(f.buffer) ? createHash('sha256').update(f.buffer).digest('hex') : null,
  }));
  const canonical = canonicalJson({
    method: shape.method.toUpperCase(),
    route: shape.route,
    params: shape.params ?? {},
    query: shape.query ?? {},
    body: shape.body ?? null,
    files,
  });
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/** JSON with every object's keys sorted; deterministic for any JSON value. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    // No prototype: a body's own "__proto__" key stays a key instead of becoming the prototype.
    const sorted = Object.create(null) as Record<string, unknown>;
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}
