import fc from 'fast-check';
import { SignJWT } from 'jose';
import { encodeCursor } from '#strata/common';
import type { CatalogRoute, DtoField } from './route-catalog';
import {
  ABSENT,
  Entries,
  headerSafe,
  hostileBodyText,
  hostilePathValue,
  hostileQueryValue,
  hostileSlug,
  hostileValue,
  jsonText,
  multipartBody,
  objectOf,
  oddContentType,
  oddExtraHeader,
  oddUrlText,
  preview,
  UrlText,
  urlText,
  validValue,
  type FieldValue,
  type Json,
  type UrlPiece,
} from './fuzz-inputs';
import type { RawHttpClient, RawRequest, RawResult } from './raw-http';
import { TEST_JWT_SECRET } from './test-config';

/**
 * Turns a route of the catalog into fuzz cases (fast-check arbitraries) and judges the answers. A
 * request is a handful of parts (method, tenant claim, token, path ids, query, headers, framing,
 * body), each with a valid and a hostile arbitrary; a case breaks none, one (most often) or a few
 * of them, so that many requests reach past the guard and the ValidationPipe into the services and
 * the database, and a failure points at the part that caused it (`broken`).
 */

/** Ids of what the fuzz world seeded, by kind (the path segment before `:id` says which kind). */
export type IdKind = 'project' | 'task' | 'invoice' | 'file' | 'webhook' | 'member' | 'tenant' | 'move' | 'export';

export interface FuzzTenant {
  id: string;
  slug: string;
  tier: string;
  token: string;
  email: string;
  password: string;
  userId: string;
  ids: Partial<Record<IdKind, string[]>>;
}

export interface FuzzWorld {
  /** One tenant per tier, each with seeded rows of every kind. */
  tenants: FuzzTenant[];
  adminToken: string;
  /** Ids admin routes may act on (a tenant of its own, its moves): never the tenants above. */
  adminIds: Partial<Record<IdKind, string[]>>;
  baseDomain: string;
  /** Values for query parameters by name, where a plain string would never be valid (a signed token). */
  queryHints: Record<string, fc.Arbitrary<UrlPiece>>;
  /** Body-field overrides per route: `{ 'POST /admin/pools': { port: … } }`. */
  fieldHints: Record<string, Record<string, { valid?: fc.Arbitrary<FieldValue>; hostile?: fc.Arbitrary<Json> }>>;
  /** Multipart file field and size limit of upload routes. */
  upload: { field: string; maxBytes: number };
}

const SEGMENT_KINDS: Record<string, IdKind> = {
  projects: 'project',
  tasks: 'task',
  invoices: 'invoice',
  files: 'file',
  webhooks: 'webhook',
  tenants: 'tenant',
  moves: 'move',
  members: 'member',
  export: 'export',
  exports: 'export',
};

type Wire = { via: 'header' | 'path' | 'subdomain' | 'none'; slug: string } | { via: 'header+path'; slug: string; other: string };

type Auth =
  | { kind: 'valid' }
  | { kind: 'none' }
  | { kind: 'cross' }
  | { kind: 'raw'; value: string }
  | { kind: 'duplicate'; validFirst: boolean; other: string }
  | { kind: 'signed'; claims: Record<string, Json> };

type Body =
  | { kind: 'json'; text: string; contentType: string | undefined }
  | { kind: 'bytes'; bytes: Buffer; contentType: string | undefined }
  | { kind: 'multipart'; bytes: Buffer; contentType: string | undefined };

export interface FuzzCase {
  /** The parts this case breaks; the others are as a valid client sends them. */
  broken: string[];
  method: string;
  caller: number;
  wire: Wire;
  auth: Auth;
  params: Record<string, UrlPiece>;
  twist: 'none' | 'trailing-slash' | 'double-slash' | 'upper-case' | 'dot-segment';
  query: Array<[UrlPiece, UrlPiece]>;
  rawQuery: string | undefined;
  /**
   * How the body is delimited: a true Content-Length, chunked, or a Content-Length shorter than the
   * body (the rest then reaches the server's HTTP parser as the start of a next request).
   */
  framing: 'length' | 'chunked' | 'short-length' | 'length-and-chunked';
  headers: Array<[string, string | string[]]>;
  body: Body | undefined;
}

// Sent as URL text in a /t/{slug} prefix, not percent-encoded again: broken encodings and dot segments.
const RAW_PATH_SLUGS = new Set(['%', '%E0%A4%A', '%00', '%2F', '..', '.', '%C0%AF']);

const OTHER_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

const bearer = (token: string) => `Bearer ${token}`;

const hostileAuthValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    'Bearer',
    'Bearer ',
    'Bearer  ',
    'bearer x',
    'Basic dXNlcjpwYXNz',
    'Bearer a.b.c',
    'Bearer ...',
    'Bearer e30.e30.',
    'Bearer eyJhbGciOiJub25lIn0.e30.',
    'Bearer eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.AAAA',
    'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.%%%',
    'Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA',
    'Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLy4uIn0.e30.AAAA',
    `Bearer ${'a'.repeat(8000)}`,
    `Bearer ${'eyJhbGciOiJIUzI1NiJ9.'.repeat(300)}x`,
    'Bearer \u00ff\u00fe',
    'Bearer x y',
  ),
  fc.string({ unit: 'binary', maxLength: 60 }).map((s) => headerSafe(`Bearer ${s}`)),
);

/** Claims of a correctly signed token that is wrong in one way or another. */
function signedClaims(world: FuzzWorld): fc.Arbitrary<Record<string, Json>> {
  const now = Math.floor(Date.now() / 1000);
  const ids = world.tenants.map((t) => t.id);
  const subs = world.tenants.map((t) => t.userId);
  return fc.record(
    {
      sub: fc.oneof(fc.constantFrom<Json>(...subs, 'not-a-uuid', '', 42, null, ['x'], new Entries([])), fc.uuid()),
      tid: fc.oneof(fc.constantFrom<Json>(...ids), fc.constantFrom<Json>('', 7, null, ids.slice(0, 1), 'x'.repeat(500))),
      role: fc.constantFrom<Json>('owner', 'member', 'admin', 'root', 0, null),
      scope: fc.constantFrom<Json>('platform:admin', 'platform:admin tenant', ['platform:admin'], 'platform:adminx', '', 5),
      exp: fc.constantFrom<Json>(now + 600, now - 600, 2 ** 53, 1e21, -1, '9999999999', null),
      iat: fc.constantFrom<Json>(now, now + 3600, 0, -1, now - 10 ** 6, 'now', 1.5),
      nbf: fc.constantFrom<Json>(now + 3600, now - 10, null, 'x'),
      iss: fc.constantFrom<Json>('strata', '', 1),
    },
    { requiredKeys: [] },
  );
}

/** A part of a request, either as a valid client would send it or broken in one of many ways. */
interface Dimension<T> {
  valid: fc.Arbitrary<T>;
  hostile: fc.Arbitrary<T>;
}

function idsFor(route: CatalogRoute, param: string, world: FuzzWorld, caller: number): fc.Arbitrary<string> {
  const segments = route.path.split('/');
  const before = segments[segments.indexOf(`:${param}`) - 1] ?? '';
  const kind = SEGMENT_KINDS[before];
  const pool = (ids: Partial<Record<IdKind, string[]>>) => (kind ? (ids[kind] ?? []) : Object.values(ids).flat());
  const pick = (ids: string[], weight: number) => ({ weight: ids.length ? weight : 0, arbitrary: ids.length ? fc.constantFrom(...ids) : fc.uuid() });
  if (route.access === 'platform-admin') {
    return fc.oneof(pick(pool(world.adminIds), 6), pick(world.tenants.flatMap((t) => pool(t.ids)), 1), { weight: 1, arbitrary: fc.uuid() });
  }
  const own = pool(world.tenants[caller].ids);
  const foreign = world.tenants.filter((_, i) => i !== caller).flatMap((t) => pool(t.ids));
  // Foreign and unknown ids are well-formed: the route must answer them as "not found", not fail.
  return fc.oneof(pick(own, 6), pick(foreign, 2), { weight: 1, arbitrary: fc.uuid() });
}

/** Dates from the far past to the far future: a well-formed cursor need not name a date PostgreSQL can hold. */
const validCursor = fc
  .record({ createdAt: fc.date({ noInvalidDate: true }), id: fc.uuid() })
  .map((p) => encodeCursor(p));

type Query = Array<[UrlPiece, UrlPiece]>;

function queryDimension(route: CatalogRoute, world: FuzzWorld): Dimension<Query> {
  const fields = route.query ?? [];
  const hints: Record<string, fc.Arbitrary<UrlPiece>> = { cursor: validCursor, ...world.queryHints };
  const validOf = (f: DtoField) => hints[f.name] ?? validValue(f).map((v) => (v === ABSENT ? '' : typeof v === 'string' ? v : jsonText(v)));
  const anyOf = (f: DtoField) => fc.oneof({ weight: 1, arbitrary: validOf(f) }, { weight: 2, arbitrary: hostileQueryValue });
  // Each parameter left out more often than sent: a cursor is only valid for the filters it was issued
  // with, so many valid requests must carry few filters.
  const valid = fc
    .tuple(...fields.map((f) => fc.oneof({ weight: 3, arbitrary: fc.constant<Query>([]) }, { weight: 2, arbitrary: validOf(f).map((v): Query => [[f.name, v]]) })))
    .map((q) => q.flat());
  const broken = fc.tuple(
    ...fields.map((f) =>
      fc.oneof(
        { weight: 2, arbitrary: fc.constant<Query>([]) },
        { weight: 4, arbitrary: anyOf(f).map((v): Query => [[f.name, v]]) },
        // Repeated (`?limit=1&limit=2` arrives as an array), bracketed (`limit[]=`, `limit[a]=`) and upper-case forms.
        { weight: 1, arbitrary: fc.tuple(anyOf(f), anyOf(f)).map(([a, b]): Query => [[f.name, a], [f.name, b]]) },
        { weight: 1, arbitrary: anyOf(f).chain((v) => fc.constantFrom<Query>([[new UrlText(`${f.name}[]`), v]], [[new UrlText(`${f.name}[a]`), v]], [[f.name.toUpperCase(), v]])) },
      ),
    ),
  );
  const unknownKey = fc.oneof(
    fc.constantFrom<UrlPiece>('offset', 'q', 'sort', 'filter', 'page', 'include', '__proto__', 'constructor', 'hasOwnProperty', ''),
    fc.constantFrom<UrlPiece>(new UrlText('__proto__[x]'), new UrlText('a[b][c]'), new UrlText('%'), new UrlText('%E0%A4%A')),
    oddUrlText,
  );
  const extra = fc.array(fc.tuple(unknownKey, fc.oneof(hostileQueryValue, validCursor)), { maxLength: 2 });
  const raw = fc.constantFrom<Query>([[new UrlText(''), new UrlText('')]], [[new UrlText('%'), new UrlText('%')]], [[new UrlText('a'), new UrlText('%E0%A4%A')]], Array.from({ length: 1500 }, (): [UrlPiece, UrlPiece] => ['a', '1']));
  return {
    valid,
    hostile: fc.oneof(
      { weight: fields.length ? 4 : 0, arbitrary: fc.tuple(broken, fc.option(extra, { nil: [] })).map(([k, e]) => [...k.flat(), ...e]) },
      { weight: 2, arbitrary: fc.tuple(valid, extra).map(([k, e]) => [...k, ...e]) },
      { weight: 1, arbitrary: raw },
    ),
  };
}

function bodyDimension(route: CatalogRoute, world: FuzzWorld): Dimension<Body | undefined> {
  const oddJsonType = fc.oneof(
    { weight: 1, arbitrary: fc.constant<string | undefined>(undefined) },
    { weight: 4, arbitrary: oddContentType.map((c): string | undefined => c) },
  );
  const json = (text: fc.Arbitrary<string>, contentType: fc.Arbitrary<string | undefined> = fc.constant('application/json')) =>
    fc.record({ kind: fc.constant('json' as const), text, contentType });
  const hints = world.fieldHints[route.name] ?? {};
  const fieldsOf = (fields: DtoField[], value: (f: DtoField) => fc.Arbitrary<FieldValue>) =>
    fc.record(Object.fromEntries(fields.map((f) => [f.name, value(f)]))).map((values) => objectOf(values as Record<string, FieldValue>));
  // Built once per field (some are costly to build), then picked from per case.
  const validArbs = new Map<DtoField, fc.Arbitrary<FieldValue>>();
  const validOf = (f: DtoField): fc.Arbitrary<FieldValue> => {
    if (!validArbs.has(f)) {
      const valid = validValue(f, hints[f.name]?.valid);
      validArbs.set(f, f.optional ? fc.option(valid, { nil: ABSENT as FieldValue }) : valid);
    }
    return validArbs.get(f)!;
  };
  const wrongOf = (f: DtoField): fc.Arbitrary<FieldValue> => fc.oneof(hints[f.name]?.hostile ?? hostileValue, fc.constant<FieldValue>(ABSENT));
  const weirdBytes = fc.record({
    kind: fc.constant('bytes' as const),
    bytes: fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      fc.constantFrom(Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]), Buffer.from('{"name":"\xc3\x28"}', 'latin1'), Buffer.from('{"name":"a"}', 'utf16le'), Buffer.from([0x1f, 0x8b, 0x08, 0x00])),
    ),
    contentType: fc.oneof(fc.constant<string | undefined>('application/json'), oddJsonType),
  });
  const junk = fc.oneof({ weight: 3, arbitrary: json(hostileBodyText) }, { weight: 1, arbitrary: weirdBytes }, { weight: 1, arbitrary: json(hostileValue.map(jsonText)) });

  if (route.upload) {
    const multipart = (body: fc.Arbitrary<{ announced: string | undefined; body: Buffer }>, odd: boolean) =>
      body.chain((m) =>
        fc
          .oneof(
            { weight: 10, arbitrary: fc.constant(m.announced === undefined ? 'multipart/form-data' : `multipart/form-data; boundary=${m.announced}`) },
            {
              weight: odd ? 2 : 0,
              arbitrary: fc.constantFrom(`multipart/form-data; boundary="${m.announced}"`, `multipart/mixed; boundary=${m.announced}`, `multipart/form-data; boundary=${m.announced}; charset=utf-16`, 'application/json', 'multipart/form-data'),
            },
          )
          .map((ct): Body => ({ kind: 'multipart', bytes: m.body, contentType: ct })),
      );
    return {
      valid: multipart(multipartBody(world.upload.field, world.upload.maxBytes, 'valid'), false),
      hostile: fc.oneof({ weight: 8, arbitrary: multipart(multipartBody(world.upload.field, world.upload.maxBytes, 'hostile'), true) }, { weight: 2, arbitrary: junk }, { weight: 1, arbitrary: fc.constant(undefined) }),
    };
  }
  if (route.body) {
    const fields = route.body;
    const extraKey = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor', 'tenantId', 'id', 'tenant_id', ...fields.map((f) => f.name)));
    // One field (or a few) wrong, the others valid; sometimes a field too many.
    const mutated = fc
      .tuple(
        // A body a schema checks in the handler (no DTO fields, e.g. PATCH /settings): only extra keys go wrong.
        fields.length ? fc.shuffledSubarray(fields, { minLength: 1, maxLength: Math.min(2, fields.length) }) : fc.constant<typeof fields>([]),
        fc.array(fc.tuple(extraKey, hostileValue), { maxLength: 1 }),
      )
      .chain(([wrong, extra]) =>
        fieldsOf(fields, (f) => (wrong.includes(f) ? wrongOf(f) : validOf(f))).map(
          (o) => new Entries([...o.entries, ...extra]),
        ),
      );
    const valid = fieldsOf(fields, validOf);
    return {
      valid: json(valid.map(jsonText), fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8')),
      hostile: fc.oneof(
        { weight: 8, arbitrary: json(mutated.map(jsonText)) },
        { weight: 1, arbitrary: json(valid.map((o) => jsonText([o]))) },
        { weight: 2, arbitrary: json(valid.map(jsonText), oddJsonType) },
        { weight: 3, arbitrary: junk },
        { weight: 1, arbitrary: fc.constant(undefined) },
      ),
    };
  }
  // Routes that read no body get one now and then: it must be ignored or refused, never trip anything.
  return { valid: fc.constant(undefined), hostile: junk };
}

function wireDimension(route: CatalogRoute, world: FuzzWorld, caller: number): Dimension<Wire> {
  const own = world.tenants[caller].slug;
  const others = world.tenants.filter((_, i) => i !== caller).map((t) => t.slug);
  const forms = fc.constantFrom('header' as const, 'path' as const, 'subdomain' as const);
  const named = route.access === 'tenant' || route.access === 'tenant-anonymous';
  const wrongSlug = fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(...others) },
    { weight: 1, arbitrary: fc.constantFrom(own.toUpperCase(), ` ${own} `, `${own}.`, `${own}%00`, encodeURIComponent(own)) },
    { weight: 3, arbitrary: hostileSlug },
  );
  return {
    valid: named ? forms.map((via): Wire => ({ via, slug: own })) : fc.constant<Wire>({ via: 'none', slug: own }),
    hostile: fc.oneof(
      { weight: 4, arbitrary: fc.tuple(forms, wrongSlug).map(([via, slug]): Wire => ({ via, slug })) },
      { weight: 1, arbitrary: fc.constant<Wire>({ via: 'none', slug: own }) },
      { weight: 1, arbitrary: fc.tuple(fc.oneof(fc.constant(own), wrongSlug), fc.oneof(fc.constant(own), wrongSlug)).map(([slug, other]): Wire => ({ via: 'header+path', slug, other })) },
      // A tenant claim on a route that takes none must change nothing.
      { weight: named ? 0 : 2, arbitrary: forms.map((via): Wire => ({ via, slug: own })) },
    ),
  };
}

function authDimension(world: FuzzWorld): Dimension<Auth> {
  return {
    valid: fc.constant<Auth>({ kind: 'valid' }),
    hostile: fc.oneof(
      { weight: 1, arbitrary: fc.constant<Auth>({ kind: 'none' }) },
      { weight: 1, arbitrary: fc.constant<Auth>({ kind: 'cross' }) },
      { weight: 3, arbitrary: hostileAuthValue.map((value): Auth => ({ kind: 'raw', value })) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), validFirst: fc.boolean(), other: hostileAuthValue }) },
      { weight: 3, arbitrary: signedClaims(world).map((claims): Auth => ({ kind: 'signed', claims })) },
    ),
  };
}

/** How many parts of a request a case breaks: none (a valid request, deep into the route), mostly one. */
const BREAK_COUNT = fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 5, arbitrary: fc.constant(1) }, { weight: 2, arbitrary: fc.constant(2) }, { weight: 1, arbitrary: fc.constant(4) });

/** Every way to call `route` that the fuzzer knows. */
export function caseArb(route: CatalogRoute, world: FuzzWorld): fc.Arbitrary<FuzzCase> {
  // Built once per caller, not per case: some arbitraries (stringMatching) are costly to build.
  const byCaller = world.tenants.map((_, caller) => dimensions(route, world, caller));
  return fc.integer({ min: 0, max: world.tenants.length - 1 }).chain((caller) => {
    const dims = byCaller[caller];
    const names = Object.keys(dims) as Array<keyof typeof dims>;
    return BREAK_COUNT.chain((k) => fc.shuffledSubarray(names, { minLength: k, maxLength: k })).chain((broken) =>
      fc
        .record(Object.fromEntries(names.map((n) => [n, broken.includes(n) ? dims[n].hostile : dims[n].valid])))
        .map((parts) => ({ ...(parts as Omit<FuzzCase, 'caller' | 'broken'>), caller, broken })),
    );
  });
}

function dimensions(route: CatalogRoute, world: FuzzWorld, caller: number): Record<Exclude<keyof FuzzCase, 'caller' | 'broken'>, Dimension<unknown>> {
  return {
    method: { valid: fc.constant(route.method), hostile: fc.constantFrom(...OTHER_METHODS.filter((m) => m !== route.method)) },
    wire: wireDimension(route, world, caller),
    auth: authDimension(world),
    params: {
      valid: fc.record(Object.fromEntries(route.params.map((p) => [p, idsFor(route, p, world, caller)]))),
      hostile: fc.record(Object.fromEntries(route.params.map((p) => [p, hostilePathValue(idsFor(route, p, world, caller))]))),
    },
    twist: { valid: fc.constant('none'), hostile: fc.constantFrom('trailing-slash', 'double-slash', 'upper-case', 'dot-segment') },
    query: queryDimension(route, world),
    framing: { valid: fc.constant('length'), hostile: fc.constantFrom('chunked', 'short-length', 'length-and-chunked') },
    rawQuery: { valid: fc.constant(undefined), hostile: fc.constantFrom('?', '?&&', '?=', '?=&=', '?%=%', '?a=%E0%A4%A', `?${'a=1&'.repeat(2000)}`) },
    headers: {
      // Now and then an Idempotency-Key, from a small pool so keys meet again (replays, reuse with another body).
      valid: fc.oneof(
        { weight: 3, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.oneof(fc.constantFrom('fuzz-key-1', 'fuzz-key-2'), fc.uuid()).map((k) => [['idempotency-key', k]]) },
      ),
      hostile: fc.array(oddExtraHeader, { minLength: 1, maxLength: 3 }),
    },
    body: bodyDimension(route, world),
  };
}

async function sign(claims: Record<string, Json>): Promise<string> {
  // jose refuses to sign some claim types (a string exp); set them on the raw payload instead.
  const payload = JSON.parse(jsonText(new Entries(Object.entries(claims)))) as Record<string, unknown>;
  const jwt = new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' });
  return jwt.sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

/** The request a case stands for, exactly as it goes on the wire. */
export async function toRequest(route: CatalogRoute, c: FuzzCase, world: FuzzWorld): Promise<RawRequest> {
  const tenant = world.tenants[c.caller];
  let path = route.path.replace(/:(\w+)/g, (_, p: string) => urlText(c.params[p]));
  if (c.twist === 'trailing-slash') path += '/';
  if (c.twist === 'double-slash') path = path.replace('/', '//');
  if (c.twist === 'upper-case') path = path.replace(/[a-z]/g, (ch) => ch.toUpperCase());
  if (c.twist === 'dot-segment') path = `/.${path}`;
  const headers: Array<[string, string | string[]]> = [];
  const slugText = (s: string) => (RAW_PATH_SLUGS.has(s) ? s : encodeURIComponent(s));
  if (c.wire.via === 'path' || c.wire.via === 'header+path') path = `/t/${slugText(c.wire.slug)}${path}`;
  if (c.wire.via === 'header') headers.push(['x-tenant', headerSafe(c.wire.slug)]);
  if (c.wire.via === 'header+path') headers.push(['x-tenant', headerSafe(c.wire.other)]);
  if (c.wire.via === 'subdomain') headers.push(['host', headerSafe(`${c.wire.slug}.${world.baseDomain}`)]);
  const query = c.query.map(([k, v]) => `${urlText(k)}=${urlText(v)}`).join('&');
  if (query) path += `?${query}`;
  else if (c.rawQuery) path += c.rawQuery;

  const token = route.access === 'platform-admin' ? world.adminToken : tenant.token;
  const crossToken = route.access === 'platform-admin' ? tenant.token : world.adminToken;
  switch (c.auth.kind) {
    case 'valid':
      if (route.access !== 'public' && route.access !== 'tenant-anonymous') headers.push(['authorization', bearer(token)]);
      break;
    case 'cross':
      headers.push(['authorization', bearer(crossToken)]);
      break;
    case 'raw':
      headers.push(['authorization', c.auth.value]);
      break;
    case 'duplicate':
      headers.push(['authorization', c.auth.validFirst ? [bearer(token), c.auth.other] : [c.auth.other, bearer(token)]]);
      break;
    case 'signed':
      headers.push(['authorization', bearer(await sign(c.auth.claims))]);
      break;
    case 'none':
      break;
  }
  if (c.body?.contentType !== undefined) headers.push(['content-type', headerSafe(c.body.contentType)]);
  headers.push(...c.headers);
  const body = c.body === undefined ? undefined : c.body.kind === 'json' ? Buffer.from(c.body.text, 'utf8') : c.body.bytes;
  if (c.framing === 'chunked' || c.framing === 'length-and-chunked') headers.push(['transfer-encoding', 'chunked']);
  if (c.framing === 'length-and-chunked') headers.push(['content-length', String(body?.length ?? 0)]);
  // A lie leaves bytes on the connection that no later request should inherit: a connection of its own.
  if (c.framing === 'short-length') headers.push(['content-length', String(Math.floor((body?.length ?? 0) / 2))]);
  return { method: c.method, path, headers, body, fresh: c.framing !== 'length' };
}

/** Error codes other than these are faults; each entry says why its 5xx is a deliberate answer. */
export const JUSTIFIED_5XX: Record<string, string> = {};

/** An error answer larger than this echoes the request back (an amplifier), whatever it says. */
const MAX_ERROR_BYTES = 16 * 1024;

const ERROR_SHAPE_KEYS = ['error', 'message', 'statusCode'];

function errorCode(res: RawResult): unknown {
  try {
    return res.kind === 'response' ? (JSON.parse(res.body.toString('utf8')) as { error?: unknown }).error : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why an answer breaks the contract, or undefined when it keeps it. `mirrored` is the GET answer a
 * HEAD answer stands for (a HEAD answer has no body to name its error code).
 */
export function verdict(req: RawRequest, res: RawResult, hangMs: number, mirrored?: RawResult): string | undefined {
  if (res.kind === 'timeout') return `no answer within ${hangMs} ms (a hang)`;
  if (res.kind === 'error') return `no HTTP answer: ${res.error}`;
  const text = res.body.toString('utf8');
  const contentType = String(res.headers['content-type'] ?? '');
  let parsed: unknown;
  // A HEAD answer carries the headers of the GET answer and no body.
  if (/^application\/json/i.test(contentType) && req.method !== 'HEAD') {
    try {
      parsed = JSON.parse(text);
    } catch {
      return `answered ${res.status} with a Content-Type of JSON and a body that is not JSON: ${preview(text)}`;
    }
  }
  const body = parsed as { statusCode?: unknown; error?: unknown; message?: unknown } | undefined;
  if (res.status >= 500) {
    const code = mirrored ? errorCode(mirrored) : body?.error;
    if (!JUSTIFIED_5XX[`${res.status} ${String(code)}`]) return `answered ${res.status}: ${preview(text)}`;
  }
  if (res.status >= 400 && req.method !== 'HEAD') {
    if (!body || typeof body !== 'object') return `answered ${res.status} without the JSON error shape (${contentType || 'no Content-Type'}): ${preview(text)}`;
    if (res.size > MAX_ERROR_BYTES) return `answered ${res.status} with an error of ${res.size} bytes: ${preview(text)}`;
    const keys = Object.keys(body).sort();
    // `details`: the per-field list of validation_failed, the dependency report of not_ready.
    const extra = keys.filter((k) => !ERROR_SHAPE_KEYS.includes(k) && !(k === 'details' && (body.error === 'validation_failed' || body.error === 'not_ready')));
    if (body.statusCode !== res.status || typeof body.error !== 'string' || !/^[a-z][a-z0-9_]*$/.test(body.error) || typeof body.message !== 'string' || extra.length) {
      return `answered ${res.status} with a body that is not {statusCode, error, message}: ${preview(text)}`;
    }
  }
  return undefined;
}

/** The request, readably, for a failure report. */
export function describeRequest(req: RawRequest): string {
  const headers = req.headers.map(([k, v]) => `  ${k}: ${preview(JSON.stringify(v), 120)}`).join('\n');
  const body = req.body ? `\n  body (${req.body.length} bytes): ${preview(JSON.stringify(req.body.toString('latin1')), 400)}` : '';
  return `${req.method} ${preview(req.path, 300)}\n${headers}${body}`;
}

export interface RouteStats {
  requests: number;
  statuses: Map<string, number>;
  slowestMs: number;
  totalMs: number;
}

/** Sends one case and judges it; throws (for fast-check) with the request and the problem. */
export async function runCase(route: CatalogRoute, c: FuzzCase, world: FuzzWorld, client: RawHttpClient, hangMs: number, stats: RouteStats): Promise<void> {
  const req = await toRequest(route, c, world);
  const res = await client.send(req, hangMs);
  stats.requests++;
  stats.slowestMs = Math.max(stats.slowestMs, res.ms);
  stats.totalMs += res.ms;
  const key = res.kind !== 'response' ? res.kind : res.status >= 400 ? `${res.status} ${String(errorCode(res) ?? '')}`.trim() : String(res.status);
  stats.statuses.set(key, (stats.statuses.get(key) ?? 0) + 1);
  const mirrored = req.method === 'HEAD' && res.kind === 'response' && res.status >= 500 ? await client.send({ ...req, method: 'GET' }, hangMs) : undefined;
  const problem = verdict(req, res, hangMs, mirrored);
  if (problem) throw new Error(`${problem}\n${describeRequest(req)}`);
}
