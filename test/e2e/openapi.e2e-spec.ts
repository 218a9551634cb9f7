import { Validator } from '@seriousme/openapi-schema-validator';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Response, Test } from 'supertest';
import { RETRY_AFTER_CODES, routeHandlers } from '#strata/api-docs';
import { AdminErrorCode } from '#strata/admin';
import { AuditErrorCode } from '#strata/audit';
import { AuthErrorCode } from '#strata/auth';
import { CommonErrorCode } from '#strata/common';
import { ExportErrorCode, TERMINAL_EXPORT_STATES } from '#strata/exports';
import { FilesErrorCode } from '#strata/files';
import { IdempotencyErrorCode } from '#strata/idempotency';
import { JobsErrorCode } from '#strata/jobs';
import { InvoicesErrorCode } from '#strata/invoices';
import { MoveErrorCode, TERMINAL_PHASES } from '#strata/moves';
import { OffboardingErrorCode } from '#strata/offboarding';
import { PlansErrorCode } from '#strata/plans';
import { ProjectsErrorCode } from '#strata/projects';
import { TenancyErrorCode } from '#strata/tenancy/platform';
import { WebhooksErrorCode } from '#strata/webhooks';
import { as } from '../support/cross-tenant';
import { tenantHome } from '../support/move-harness';
import { addMember, mailbox, PASSWORD } from '../support/sessions';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(120_000);

type Json = Record<string, unknown>;
interface OpenApiDoc {
  openapi: string;
  info: Json;
  servers?: Json[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json>; parameters?: Record<string, Json>; headers?: Record<string, Json> };
}
interface Operation {
  operationId: string;
  parameters?: Json[];
  requestBody?: { content: Record<string, { schema?: Json }> };
  responses: Record<string, { description?: string; content?: Record<string, { schema?: Json }>; headers?: Record<string, Json> }>;
  security?: Array<Record<string, string[]>>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const MISSING = '00000000-0000-4000-8000-000000000000';

/** `GET /projects/:id` (Nest's spelling, as the route-access test writes it) → its path and method in the document. */
const locate = (route: string) => {
  const [method, path] = route.split(' ');
  return { method: method.toLowerCase(), path: path.replace(/:([A-Za-z0-9_]+)/g, '{$1}') };
};

/**
 * The documented schema made exact for the contract check: an object schema that lists its
 * properties refuses others, so a field the route adds (or renames) without documenting it fails.
 * Open-ended objects say so explicitly with `additionalProperties` and are left as they are.
 */
function exact<T>(node: T): T {
  if (Array.isArray(node)) return node.map(exact) as T;
  if (node && typeof node === 'object') {
    const out: Json = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, exact(v)]));
    if (out.properties && typeof out.properties === 'object' && !('additionalProperties' in out)) out.additionalProperties = false;
    return out as T;
  }
  return node;
}

/** Every schema object the document holds, with where it is (components, parameters, bodies, responses, headers). */
function schemasOf(doc: OpenApiDoc): Array<[string, Json]> {
  const out: Array<[string, Json]> = Object.entries(doc.components.schemas).map(([name, s]) => [`components.schemas.${name}`, s]);
  for (const [name, p] of Object.entries(doc.components.parameters ?? {})) if (p.schema) out.push([`components.parameters.${name}`, p.schema as Json]);
  for (const [name, h] of Object.entries(doc.components.headers ?? {})) if (h.schema) out.push([`components.headers.${name}`, h.schema as Json]);
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const at = `${method.toUpperCase()} ${path}`;
      for (const p of op.parameters ?? []) if (p.schema) out.push([`${at} parameter ${String(p.name)}`, p.schema as Json]);
      for (const [type, c] of Object.entries(op.requestBody?.content ?? {})) if (c.schema) out.push([`${at} body ${type}`, c.schema]);
      for (const [status, r] of Object.entries(op.responses)) {
        for (const [type, c] of Object.entries(r.content ?? {})) if (c.schema) out.push([`${at} ${status} ${type}`, c.schema]);
      }
    }
  }
  return out;
}

function resolvePointer(doc: unknown, ref: string): unknown {
  return ref
    .slice(2)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Json)[key] : undefined), doc);
}

function refsOf(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => refsOf(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsOf(v, out);
    }
  }
  return out;
}

/** The per-lib catalogues of stable error codes (`*.errors.ts`). */
const CATALOGUES = [
  CommonErrorCode,
  AuditErrorCode,
  TenancyErrorCode,
  AuthErrorCode,
  AdminErrorCode,
  MoveErrorCode,
  ExportErrorCode,
  OffboardingErrorCode,
  IdempotencyErrorCode,
  JobsErrorCode,
  ProjectsErrorCode,
  InvoicesErrorCode,
  FilesErrorCode,
  WebhooksErrorCode,
  PlansErrorCode,
];

/** The error codes written as literals where `source` makes an answer (`notFound('x', …)`, `new ApiException(404, 'x', …)` …). */
function literalErrorCodes(source: string): string[] {
  const sites = [
    /\b(?:badRequest|notFound|conflict|unauthorized|forbidden|unavailable)\(([^,]*),/g,
    /new ApiException\(\s*[^,]+,\s*([^,]*),/g,
    /WireTenantError\(([^,]*),/g,
    /get code\(\): string \{\s*return ([^;]*);/g,
  ];
  return sites.flatMap((site) => [...source.matchAll(site)].flatMap((m) => [...m[1].matchAll(/'([a-z][a-z0-9_]*)'/g)].map((lit) => lit[1])));
}

/** Every lib source file (tests left out), relative to libs/. */
function libSources(dir = join(__dirname, '../../libs')): Array<[file: string, source: string]> {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts'))
    .map((e) => [join(e.parentPath, e.name).slice(dir.length + 1), readFileSync(join(e.parentPath, e.name), 'utf8')]);
}

describe('the OpenAPI document: served at /openapi.json and /docs, describes every route, and real answers match it', () => {
  let t: TestApp;
  let doc: OpenApiDoc;
  let filesRoot: string;
  let acme: OnboardedTenant;
  let member: string;
  const env = { FILES_DRIVER: process.env.FILES_DRIVER, FILES_ROOT: process.env.FILES_ROOT, FILES_MAX_BYTES: process.env.FILES_MAX_BYTES };

  // The contract check: every sampled answer against its operation's documented response.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat('binary', true);
  const validators = new Map<string, ValidateFunction>();
  const sampled: Array<{ route: string; status: number; error?: string }> = [];
  const mismatches: string[] = [];

  function check(route: string, res: Response): Response {
    const { method, path } = locate(route);
    const answer = `${route} → ${res.status}${res.body?.error ? ` ${res.body.error}` : ''}`;
    sampled.push({ route, status: res.status, error: res.body?.error });
    const documented = doc.paths[path]?.[method]?.responses[String(res.status)];
    if (!documented) {
      mismatches.push(`${answer}: this status is not documented`);
      return res;
    }
    const expectedHeaders = ['X-Request-Id', ...(RETRY_AFTER_CODES.includes(res.body?.error) ? ['Retry-After'] : [])];
    for (const name of expectedHeaders) {
      if (!documented.headers?.[name]) mismatches.push(`${answer}: the ${name} header is not documented`);
      if (res.headers[name.toLowerCase()] === undefined) mismatches.push(`${answer}: no ${name} header`);
    }
    const type = String(res.headers['content-type'] ?? '').split(';')[0];
    if (!documented.content) {
      if (res.text) mismatches.push(`${answer}: documented without a body, answered ${type} ${res.text.slice(0, 80)}`);
      return res;
    }
    const media = documented.content[type] ?? documented.content['*/*'];
    if (!media) {
      mismatches.push(`${answer}: answered ${type}, documented ${Object.keys(documented.content).join(', ')}`);
      return res;
    }
    if (type !== 'application/json') return res;
    const key = `${method} ${path} ${res.status}`;
    let validate = validators.get(key);
    if (!validate) {
      const schema = JSON.parse(JSON.stringify(exact(media.schema)).replace(/"#\/components\//g, '"openapi.json#/components/'));
      validate = ajv.compile(schema);
      validators.set(key, validate);
    }
    if (!validate(res.body)) mismatches.push(`${answer}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(res.body).slice(0, 300)}`);
    return res;
  }

  /** Sends `request` (a route of the app, named as Nest registers it) and checks the answer against the document. */
  const sample = async (route: string, request: Test): Promise<Response> => check(route, await request);
  const http = () => t.http();
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });

  beforeAll(async () => {
    filesRoot = mkdtempSync(join(tmpdir(), 'strata-openapi-files-'));
    // Read by StorageModule.forRoot() while the app is built: local files, a small limit to reach 413.
    Object.assign(process.env, { FILES_DRIVER: 'local', FILES_ROOT: filesRoot, FILES_MAX_BYTES: '4096' });
    // A short lock budget, so the 503 of a unit stuck on a lock is answered quickly.
    t = await startTestApp({ dataLockTimeoutMs: 300, signupEnabled: true });
    acme = await t.onboard('acme', 'pool');
    await http().post(`/admin/tenants/${acme.id}/users`).set(admin()).send({ email: `member@${acme.slug}.test`, password: 'correct-horse-battery', role: 'member' }).expect(201);
    member = (await http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: `member@${acme.slug}.test`, password: 'correct-horse-battery' }).expect(200)).body.access_token;
    doc = (await http().get('/openapi.json').expect(200)).body;
    ajv.addSchema(exact(doc) as object, 'openapi.json');
  });
  afterAll(async () => {
    await t?.close();
    rmSync(filesRoot, { recursive: true, force: true });
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });

  describe('serving', () => {
    it('serves an OpenAPI 3.1 document as JSON without a token or a tenant, and Swagger UI at /docs that loads it', async () => {
      const res = await http().get('/openapi.json').expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.openapi).toMatch(/^3\.1\.\d+$/);
      expect(res.body.info).toEqual(expect.objectContaining({ title: 'Strata API', version: expect.any(String) }));
      const ui = await http().get('/docs').expect(200);
      expect(ui.headers['content-type']).toMatch(/^text\/html/);
      expect(ui.text).toContain('swagger-ui');
      const init = await http().get('/docs/swagger-ui-init.js').expect(200);
      expect(init.text).toMatch(/"openapi":\s*"3\.1\.0"/);
      await http().get('/docs/swagger-ui-bundle.js').expect(200);
    });

    it('names the three ways to name a tenant: the X-Tenant header on tenant routes, a /t/{tenant} server and a {tenant}.BASE_DOMAIN server', () => {
      expect(doc.servers?.map((s) => s.url)).toEqual(['/', '/t/{tenant}', `{scheme}://{tenant}.${t.config.baseDomain}`]);
      expect(doc.paths['/projects'].get.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'X-Tenant', in: 'header', required: false })]));
      expect(doc.paths['/auth/login'].post.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'X-Tenant', in: 'header' })]));
      expect(doc.paths['/admin/tenants'].get.parameters ?? []).not.toEqual(expect.arrayContaining([expect.objectContaining({ name: 'X-Tenant' })]));
    });

    it('declares both bearer schemes, and each route the one it takes with the least role or the platform:admin scope', () => {
      expect(doc.components.securitySchemes).toEqual({
        tenantBearer: expect.objectContaining({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }),
        platformAdminBearer: expect.objectContaining({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }),
      });
      expect(doc.paths['/projects/{id}'].delete.security).toEqual([{ tenantBearer: ['admin'] }]);
      expect(doc.paths['/projects'].get.security).toEqual([{ tenantBearer: ['member'] }]);
      expect(doc.paths['/admin/pools'].get.security).toEqual([{ platformAdminBearer: ['platform:admin'] }]);
      expect(doc.paths['/auth/login'].post.security).toBeUndefined();
      expect(doc.paths['/health/ready'].get.security).toBeUndefined();
    });
  });

  describe('completeness', () => {
    it('documents every route the app registered (enumerated from Nest at runtime), and no route that does not exist', () => {
      const registered = routeHandlers(t.app).map((r) => `${r.method.toUpperCase()} ${r.path}`);
      expect(registered).toEqual(expect.arrayContaining(['GET /projects', 'POST /admin/tenants', 'GET /health/ready', 'POST /auth/login']));
      const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`));
      expect({ undocumented: registered.filter((r) => !documented.includes(r)), stale: documented.filter((d) => !registered.includes(d)) }).toEqual({ undocumented: [], stale: [] });
    });

    it('documents the success answer of every route: a schema for its body, or no body for a 204', () => {
      const problems: string[] = [];
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(item)) {
          const successes = Object.entries(op.responses).filter(([s]) => Number(s) >= 200 && Number(s) < 300);
          if (successes.length === 0) problems.push(`${method} ${path}: no 2xx`);
          for (const [status, r] of successes) {
            if (status === '204' ? r.content : !Object.values(r.content ?? {}).some((c) => c.schema)) problems.push(`${method} ${path} ${status}: ${status === '204' ? 'a body' : 'no schema'}`);
          }
        }
      }
      expect(problems).toEqual([]);
    });

    it("documents every route's errors in the one shape {statusCode, error, message} with `error` as an enum of codes", () => {
      const problems: string[] = [];
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(item)) {
          const at = `${method.toUpperCase()} ${path}`;
          if (!op.responses['500']) problems.push(`${at}: no 500`);
          for (const [status, r] of Object.entries(op.responses).filter(([s]) => Number(s) >= 400)) {
            const schema = r.content?.['application/json']?.schema as { required?: string[]; properties?: Record<string, { enum?: unknown[] }> } | undefined;
            const codes = schema?.properties?.error?.enum;
            if (!schema || !['statusCode', 'error', 'message'].every((k) => schema.required?.includes(k)) || !codes?.length) problems.push(`${at} ${status}: not the error shape with an enum`);
            if (schema?.properties?.statusCode?.enum?.[0] !== Number(status)) problems.push(`${at} ${status}: statusCode is not pinned to ${status}`);
          }
          const security = op.security?.[0] ?? {};
          if ('tenantBearer' in security) {
            for (const [status, code] of [['401', 'unauthenticated'], ['403', 'forbidden_role'], ['404', 'tenant_not_found'], ['503', 'tenant_unavailable']]) {
              if (!op.responses[status]?.content?.['application/json']?.schema?.properties) problems.push(`${at}: no ${status}`);
              else if (!JSON.stringify(op.responses[status]).includes(`"${code}"`)) problems.push(`${at}: ${status} without ${code}`);
            }
            if (!op.responses['503']?.headers?.['Retry-After']) problems.push(`${at}: 503 without Retry-After`);
            if (!op.responses['409']?.headers?.['Retry-After'] && op.responses['409'] && JSON.stringify(op.responses['409']).includes('idempotency_key_in_use')) problems.push(`${at}: 409 without Retry-After`);
          }
          if (op.requestBody?.content['application/json'] && !JSON.stringify(op.responses['400'] ?? {}).includes('"validation_failed"')) problems.push(`${at}: a JSON body without 400 validation_failed`);
          if ((op.parameters ?? []).some((p) => p.name === 'Idempotency-Key')) {
            for (const [status, code] of [['400', 'invalid_idempotency_key'], ['409', 'idempotency_key_in_use'], ['422', 'idempotency_key_reused']]) {
              if (!JSON.stringify(op.responses[status] ?? {}).includes(`"${code}"`)) problems.push(`${at}: idempotent without ${status} ${code}`);
            }
          }
          if (!(op.parameters ?? []).some((p) => p.$ref === '#/components/parameters/X-Request-Id')) problems.push(`${at}: no X-Request-Id parameter`);
        }
      }
      expect(problems).toEqual([]);
    });

    it('finds every error code a lib answers with in one of the catalogues the document is built from', () => {
      // The scan itself finds the ways the libs write an answer's code.
      const sample = `throw unauthorized(expired ? 'token_expired' : 'invalid_token', 'm'); throw new ApiException(
        501,
        'presigned_urls_unsupported', 'm'); new WireTenantError('tenant_required', 'm'); get code(): string {
        return 'json_too_deep'; }`;
      expect(literalErrorCodes(sample)).toEqual(expect.arrayContaining(['token_expired', 'invalid_token', 'presigned_urls_unsupported', 'tenant_required', 'json_too_deep']));
      const catalogued = new Set(CATALOGUES.flatMap((c) => Object.values(c) as string[]));
      const strays = libSources().flatMap(([file, source]) => literalErrorCodes(source).filter((code) => !catalogued.has(code)).map((code) => `${file}: ${code}`));
      expect(strays).toEqual([]);
    });

    it('lists every catalogued code that is an answer of some route in the shared ApiError schema', () => {
      const listed = ((doc.components.schemas.ApiError.properties as Record<string, { enum: string[] }>).error.enum);
      // Raised on no route's answer a client reads: a client that left (499, logged only); an enqueue
      // with Redis down (the webhooks outbox leaves it to the relay instead of failing the request).
      // Answered before any route (the HTTP parser could not read the request; the description says so).
      const notAnswers = new Set<string>([
        TenancyErrorCode.clientClosedRequest,
        JobsErrorCode.jobsUnavailable,
        CommonErrorCode.malformedRequest,
        CommonErrorCode.requestTimeout,
        CommonErrorCode.headersTooLarge,
      ]);
      const catalogued = CATALOGUES.flatMap((c) => Object.values(c) as string[]).filter((c) => !notAnswers.has(c));
      expect(catalogued.filter((c) => !listed.includes(c))).toEqual([]);
    });

    it('offers Idempotency-Key on exactly the tenant creates', () => {
      const idempotent = Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.entries(item)
          .filter(([, op]) => (op.parameters ?? []).some((p) => p.name === 'Idempotency-Key' && p.in === 'header'))
          .map(([m]) => `${m.toUpperCase()} ${path}`),
      );
      expect(idempotent.sort()).toEqual(['POST /files', 'POST /invoices', 'POST /projects', 'POST /projects/{id}/tasks', 'POST /webhooks']);
    });
  });

  describe('well-formedness (what code generators and fuzzers rely on)', () => {
    it('is valid OpenAPI 3.1 for a standard validator (the official OAS 3.1 schema, as code generators and fuzzers read it)', async () => {
      const validator = new Validator();
      const result = await validator.validate(structuredClone(doc) as unknown as Parameters<Validator['validate']>[0]);
      expect(validator.version).toBe('3.1');
      expect(result.errors ?? []).toEqual([]);
      expect(result.valid).toBe(true);
    });

    it('resolves every $ref, and gives every operation a unique operationId', () => {
      const unresolved = refsOf(doc).filter((ref) => !ref.startsWith('#/') || resolvePointer(doc, ref) === undefined);
      expect([...new Set(unresolved)]).toEqual([]);
      const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
      expect(ids.filter((id, i) => !id || ids.indexOf(id) !== i)).toEqual([]);
    });

    it('declares every path template parameter once, required, and no path parameter the template lacks', () => {
      const problems: string[] = [];
      for (const [path, item] of Object.entries(doc.paths)) {
        const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        for (const [method, op] of Object.entries(item)) {
          const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
          for (const n of names) if (declared.filter((p) => p.name === n && p.required === true).length !== 1) problems.push(`${method} ${path}: {${n}}`);
          for (const p of declared) if (!names.includes(String(p.name))) problems.push(`${method} ${path}: extra ${String(p.name)}`);
          for (const p of op.parameters ?? []) if (!p.$ref && (!p.name || !p.in || !p.schema)) problems.push(`${method} ${path}: parameter without name, in or schema`);
          for (const [status, r] of Object.entries(op.responses)) if (!r.description) problems.push(`${method} ${path} ${status}: no description`);
          for (const req of op.security ?? []) for (const scheme of Object.keys(req)) if (!doc.components.securitySchemes[scheme]) problems.push(`${method} ${path}: unknown scheme ${scheme}`);
        }
      }
      expect(problems).toEqual([]);
    });

    it('holds only valid JSON Schema 2020-12 (the OpenAPI 3.1 dialect): no 3.0 leftovers, every schema compiles with its references', () => {
      const meta = new Ajv2020({ strict: false });
      const problems: string[] = [];
      for (const [where, schema] of schemasOf(doc)) {
        if (!meta.validateSchema(schema)) problems.push(`${where}: ${meta.errorsText(meta.errors)}`);
        const leftovers = JSON.stringify(schema).match(/"(nullable|x-nullable)":|"type":"file"/g);
        if (leftovers) problems.push(`${where}: OpenAPI 3.0 keywords ${leftovers.join(' ')}`);
        try {
          ajv.compile(JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"openapi.json#/components/')));
        } catch (err) {
          problems.push(`${where}: ${(err as Error).message}`);
        }
      }
      expect(problems).toEqual([]);
    });
  });

  describe('real answers match the documented schemas (contract)', () => {
    it('the auth route: a token, wrong credentials, a missing or unknown tenant, an invalid body', async () => {
      const login = (tenant: string | undefined, body: object) => {
        const req = http().post('/auth/login');
        return (tenant ? req.set('X-Tenant', tenant) : req).send(body);
      };
      expect((await sample('POST /auth/login', login(acme.slug, { email: acme.email, password: acme.password }))).status).toBe(200);
      expect((await sample('POST /auth/login', login(acme.slug, { email: acme.email, password: 'wrong-password' }))).body.error).toBe('invalid_credentials');
      expect((await sample('POST /auth/login', login(undefined, { email: acme.email, password: acme.password }))).body.error).toBe('tenant_required');
      expect((await sample('POST /auth/login', login('no-such-tenant', { email: acme.email, password: acme.password }))).status).toBe(404);
      expect((await sample('POST /auth/login', login(acme.slug, { email: 'not an email', password: '' }))).body.error).toBe('validation_failed');
    });

    it('sessions: refresh (and its reuse), logout, me, the tenants of a user, a password change', async () => {
      const user = await addMember(t, acme, 'member');
      const mine = { 'X-Tenant': acme.slug, authorization: `Bearer ${user.token}` };
      const refreshed = await sample('POST /auth/refresh', http().post('/auth/refresh').set('X-Tenant', acme.slug).send({ refresh_token: user.refreshToken }));
      expect(refreshed.status).toBe(200);
      expect((await sample('POST /auth/refresh', http().post('/auth/refresh').set('X-Tenant', acme.slug).send({ refresh_token: user.refreshToken }))).body.error).toBe('refresh_token_reused');
      expect((await sample('POST /auth/refresh', http().post('/auth/refresh').set('X-Tenant', acme.slug).send({ refresh_token: 'A'.repeat(43) }))).body.error).toBe('invalid_refresh_token');
      expect((await sample('POST /auth/refresh', http().post('/auth/refresh').set('X-Tenant', acme.slug).send({ refresh_token: 'no' }))).body.error).toBe('validation_failed');
      expect((await sample('POST /auth/logout', http().post('/auth/logout').set('X-Tenant', acme.slug).send({ refresh_token: refreshed.body.refresh_token }))).status).toBe(204);
      await sample('GET /auth/me', http().get('/auth/me').set(mine));
      await sample('POST /auth/tenants', http().post('/auth/tenants').send({ email: user.email, password: PASSWORD }));
      expect((await sample('POST /auth/tenants', http().post('/auth/tenants').send({ email: user.email, password: 'wrong-password' }))).body.error).toBe('invalid_credentials');
      expect((await sample('POST /auth/password', http().post('/auth/password').set(mine).send({ currentPassword: 'wrong-password', newPassword: 'a-new-password' }))).body.error).toBe('invalid_current_password');
      expect((await sample('POST /auth/password', http().post('/auth/password').set(mine).send({ currentPassword: PASSWORD, newPassword: 'a-new-password' }))).status).toBe(200);
    });

    it('members: list, invite (and its refusals), accept an invitation, change a role, the last owner kept, remove', async () => {
      const mail = mailbox(t);
      const email = `invited-${randomUUID().slice(0, 8)}@${acme.slug}.test`;
      const invited = await sample('POST /members/invitations', http().post('/members/invitations').set(as(acme)).send({ email, role: 'member' }));
      expect(invited.status).toBe(201);
      expect((await sample('POST /members/invitations', http().post('/members/invitations').set(as(acme)).send({ email: acme.email, role: 'member' }))).body.error).toBe('membership_exists');
      expect((await sample('POST /members/invitations', http().post('/members/invitations').set(as(acme)).set('authorization', `Bearer ${member}`).send({ email, role: 'member' }))).body.error).toBe('forbidden_role');
      expect((await sample('GET /members/invitations', http().get('/members/invitations').set(as(acme)))).body.items.length).toBeGreaterThan(0);
      const withdrawn = await http().post('/members/invitations').set(as(acme)).send({ email: `withdrawn-${email}`, role: 'member' }).expect(201);
      expect((await sample('DELETE /members/invitations/:id', http().delete(`/members/invitations/${withdrawn.body.id}`).set(as(acme)))).status).toBe(204);
      expect((await sample('DELETE /members/invitations/:id', http().delete(`/members/invitations/${withdrawn.body.id}`).set(as(acme)))).body.error).toBe('invitation_not_found');
      const token = mail.tokenFor(email);
      expect((await sample('POST /auth/invitations/accept', http().post('/auth/invitations/accept').send({ token }))).body.error).toBe('password_required');
      const accepted = await sample('POST /auth/invitations/accept', http().post('/auth/invitations/accept').send({ token, password: 'a-fresh-password' }));
      expect(accepted.status).toBe(200);
      expect((await sample('POST /auth/invitations/accept', http().post('/auth/invitations/accept').send({ token, password: 'a-fresh-password' }))).body.error).toBe('invitation_not_found');
      await sample('GET /members', http().get('/members').set(as(acme)));
      const userId = accepted.body.userId as string;
      expect((await sample('PATCH /members/:userId', http().patch(`/members/${userId}`).set(as(acme)).send({ role: 'admin' }))).status).toBe(200);
      expect((await sample('PATCH /members/:userId', http().patch(`/members/${MISSING}`).set(as(acme)).send({ role: 'admin' }))).body.error).toBe('member_not_found');
      expect((await sample('PATCH /members/:userId', http().patch(`/members/${acme.userId}`).set(as(acme)).send({ role: 'admin' }))).body.error).toBe('last_owner');
      expect((await sample('DELETE /members/:userId', http().delete(`/members/${userId}`).set(as(acme)))).status).toBe(204);
      expect((await sample('DELETE /members/:userId', http().delete(`/members/${userId}`).set(as(acme)))).body.error).toBe('member_not_found');
      mail.spy.mockRestore();
    });

    it('projects and tasks: every route, with 400/401/403/404/409/413/422 answers and an idempotent replay', async () => {
      const key = `openapi-${randomUUID()}`;
      const created = await sample('POST /projects', http().post('/projects').set(as(acme)).set('Idempotency-Key', key).send({ name: 'contract', description: null }));
      expect(created.status).toBe(201);
      const replay = await sample('POST /projects', http().post('/projects').set(as(acme)).set('Idempotency-Key', key).send({ name: 'contract', description: null }));
      expect([replay.status, replay.headers['idempotent-replayed']]).toEqual([201, 'true']);
      expect((await sample('POST /projects', http().post('/projects').set(as(acme)).set('Idempotency-Key', key).send({ name: 'another' }))).status).toBe(422);
      expect((await sample('POST /projects', http().post('/projects').set(as(acme)).set('Idempotency-Key', '').send({ name: 'x' }))).body.error).toBe('invalid_idempotency_key');
      expect((await sample('POST /projects', http().post('/projects').set(as(acme)).send({}))).body.error).toBe('validation_failed');
      expect((await sample('POST /projects', http().post('/projects').set(as(acme)).set('content-type', 'text/plain').send('{"name":"x"}'))).body.error).toBe('unsupported_media_type');
      expect((await sample('POST /projects', http().post('/projects').set(as(acme)).set('content-type', 'application/json').send('[]'))).body.error).toBe('body_not_object');
      expect((await sample('GET /projects/:id', http().get(`/projects/${MISSING}`).set(as(acme)).query({ expand: 'tasks' }))).body.error).toBe('unknown_query_parameter');
      expect((await sample('POST /projects', http().post('/projects').set(as(acme)).set('content-type', 'application/json').send('{"name":'))).body.error).toBe('invalid_json');
      expect((await sample('POST /projects', http().post('/projects').set(as(acme)).send({ name: 'x', description: 'y'.repeat(300_000) }))).status).toBe(413);
      const id = created.body.id as string;

      await sample('GET /projects', http().get('/projects').set(as(acme)).query({ limit: 1 }));
      expect((await sample('GET /projects', http().get('/projects').set(as(acme)).query({ cursor: '!!' }))).body.error).toBe('invalid_cursor');
      expect((await sample('GET /projects', http().get('/projects').set(as(acme)).query({ sort: 'name' }))).body.error).toBe('unknown_query_parameter');
      expect((await sample('GET /projects', http().get('/projects').set(as(acme)).query({ limit: 0 }))).body.details).toEqual([expect.objectContaining({ field: 'limit' })]);
      expect((await sample('GET /projects', http().get('/projects').set('X-Tenant', acme.slug))).body.error).toBe('unauthenticated');
      expect((await sample('GET /projects', http().get('/projects').set('X-Tenant', acme.slug).set('authorization', 'Bearer not-a-token'))).body.error).toBe('invalid_token');
      expect((await sample('GET /projects', http().get('/projects').set(as(acme)).set('X-Tenant', 'someone-else'))).status).toBe(404);
      expect((await sample('GET /projects', http().get(`/t/${acme.slug}/projects`).set(as(acme)).set('X-Tenant', 'globex'))).body.error).toBe('tenant_ambiguous');

      await sample('GET /projects/:id', http().get(`/projects/${id}`).set(as(acme)));
      expect((await sample('GET /projects/:id', http().get(`/projects/${MISSING}`).set(as(acme)))).body.error).toBe('project_not_found');
      expect((await sample('GET /projects/:id', http().get('/projects/not-a-uuid').set(as(acme)))).body.error).toBe('invalid_id');
      await sample('PATCH /projects/:id', http().patch(`/projects/${id}`).set(as(acme)).send({ description: 'changed' }));
      expect((await sample('PATCH /projects/:id', http().patch(`/projects/${id}`).set(as(acme)).send({}))).body.error).toBe('validation_failed');

      const task = await sample('POST /projects/:id/tasks', http().post(`/projects/${id}/tasks`).set(as(acme)).send({ title: 'write the contract', status: 'doing' }));
      expect(task.status).toBe(201);
      expect((await sample('POST /projects/:id/tasks', http().post(`/projects/${MISSING}/tasks`).set(as(acme)).send({ title: 'orphan' }))).body.error).toBe('project_not_found');
      await sample('GET /projects/:id/tasks', http().get(`/projects/${id}/tasks`).set(as(acme)));
      await sample('GET /tasks/:id', http().get(`/tasks/${task.body.id}`).set(as(acme)));
      expect((await sample('GET /tasks/:id', http().get(`/tasks/${MISSING}`).set(as(acme)))).body.error).toBe('task_not_found');
      await sample('PATCH /tasks/:id', http().patch(`/tasks/${task.body.id}`).set(as(acme)).send({ status: 'done' }));
      expect((await sample('PATCH /tasks/:id', http().patch(`/tasks/${task.body.id}`).set(as(acme)).send({ status: 'archived' }))).body.error).toBe('validation_failed');
      expect((await sample('DELETE /tasks/:id', http().delete(`/tasks/${task.body.id}`).set(as(acme)).set('authorization', `Bearer ${member}`))).body.error).toBe('forbidden_role');
      expect((await sample('DELETE /tasks/:id', http().delete(`/tasks/${task.body.id}`).set(as(acme)))).status).toBe(204);
      expect((await sample('DELETE /projects/:id', http().delete(`/projects/${id}`).set(as(acme)).set('authorization', `Bearer ${member}`))).body.error).toBe('forbidden_role');
      expect((await sample('DELETE /projects/:id', http().delete(`/projects/${id}`).set(as(acme)))).status).toBe(204);
    });

    it("a tenant unit stuck on a lock answers the documented 503 with Retry-After", async () => {
      const { body: project } = await http().post('/projects').set(as(acme)).send({ name: 'locked' }).expect(201);
      const home = await tenantHome(t, acme.id);
      const owner = new URL(t.db.ownerUrl);
      const locker = new Client({ host: home.host, port: home.port, database: home.database, user: decodeURIComponent(owner.username), password: owner.password || undefined });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE "${home.schema}".projects IN ACCESS EXCLUSIVE MODE`);
        const busy = await sample('PATCH /projects/:id', http().patch(`/projects/${project.id}`).set(as(acme)).send({ name: 'waits' }));
        expect([busy.status, busy.body.error, busy.headers['retry-after']]).toEqual([503, 'lock_timeout', '1']);
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        await locker.end();
      }
    });

    it('invoices: create, the 409 of a taken number, list and get', async () => {
      const body = { number: `INV-${randomUUID().slice(0, 8)}`, amount: 1250, currency: 'EUR' };
      const created = await sample('POST /invoices', http().post('/invoices').set(as(acme)).send(body));
      expect(created.status).toBe(201);
      expect((await sample('POST /invoices', http().post('/invoices').set(as(acme)).send(body))).body.error).toBe('invoice_number_taken');
      expect((await sample('POST /invoices', http().post('/invoices').set(as(acme)).send({ ...body, currency: 'eur', amount: '12' }))).body.error).toBe('validation_failed');
      await sample('GET /invoices', http().get('/invoices').set(as(acme)));
      await sample('GET /invoices/:id', http().get(`/invoices/${created.body.id}`).set(as(acme)));
      expect((await sample('GET /invoices/:id', http().get(`/invoices/${MISSING}`).set(as(acme)))).body.error).toBe('invoice_not_found');
      await sample('GET /invoices', http().get('/invoices').set(as(acme)).query({ status: 'open', dueFrom: '2030-01-01T00:00:00Z', limit: 1 }));
      await sample('PATCH /invoices/:id', http().patch(`/invoices/${created.body.id}`).set(as(acme)).send({ amount: 7, dueAt: '2030-01-01T00:00:00Z' }));
      await sample('PATCH /invoices/:id', http().patch(`/invoices/${created.body.id}`).set(as(acme)).send({ dueAt: null }));
      expect((await sample('POST /invoices/:id/void', http().post(`/invoices/${created.body.id}/void`).set(as(acme)))).status).toBe(200);
      expect((await sample('PATCH /invoices/:id', http().patch(`/invoices/${created.body.id}`).set(as(acme)).send({ status: 'paid' }))).body.error).toBe('invalid_invoice_transition');
      expect((await sample('POST /invoices/:id/void', http().post(`/invoices/${MISSING}/void`).set(as(acme)))).body.error).toBe('invoice_not_found');
    });

    it('files: upload (and its 400/413 answers), list, describe, download (whole, a range, not modified, past the end), the signed URL and its route, delete', async () => {
      const upload = (bytes: Buffer, filename = 'notes.txt') => http().post('/files').set(as(acme)).attach('file', bytes, { filename, contentType: 'text/plain' });
      const created = await sample('POST /files', upload(Buffer.from('hello, contract')));
      expect(created.status).toBe(201);
      expect((await sample('POST /files', upload(Buffer.alloc(8192, 1)))).body.error).toBe('file_too_large');
      expect((await sample('POST /files', http().post('/files').set(as(acme)).send({ file: 'not multipart' }))).body.error).toBe('file_required');
      expect((await sample('POST /files', upload(Buffer.from('x'), `${'x'.repeat(300)}.txt`))).body.error).toBe('invalid_filename');
      await sample('GET /files', http().get('/files').set(as(acme)));
      await sample('GET /files/:id', http().get(`/files/${created.body.id}`).set(as(acme)));
      const content = await sample('GET /files/:id/content', http().get(`/files/${created.body.id}/content`).set(as(acme)));
      expect([content.status, content.text]).toEqual([200, 'hello, contract']);
      const ranged = await sample('GET /files/:id/content', http().get(`/files/${created.body.id}/content`).set(as(acme)).set('range', 'bytes=0-4'));
      expect([ranged.status, ranged.text]).toEqual([206, 'hello']);
      const unchanged = await sample('GET /files/:id/content', http().get(`/files/${created.body.id}/content`).set(as(acme)).set('if-none-match', content.headers.etag));
      expect(unchanged.status).toBe(304);
      expect((await sample('GET /files/:id/content', http().get(`/files/${created.body.id}/content`).set(as(acme)).set('range', 'bytes=999-'))).body.error).toBe('range_not_satisfiable');
      const url = await sample('GET /files/:id/url', http().get(`/files/${created.body.id}/url`).set(as(acme)));
      expect(url.status).toBe(200);
      const signedUrl = new URL(url.body.url);
      const signed = await sample('GET /files/signed', http().get(`${signedUrl.pathname}${signedUrl.search}`));
      expect([signed.status, signed.text]).toEqual([200, 'hello, contract']);
      expect((await sample('GET /files/signed', http().get('/files/signed?token=not-a-token'))).body.error).toBe('signed_url_invalid');
      expect((await sample('GET /files/:id/content', http().get(`/files/${MISSING}/content`).set(as(acme)))).body.error).toBe('file_not_found');
      expect((await sample('DELETE /files/:id', http().delete(`/files/${created.body.id}`).set(as(acme)))).status).toBe(204);
    });

    it('webhooks: register (secret once), the 400 of a private URL, list, get, deliveries of an invoice, rotate, ping, redeliver, disable, delete (log kept)', async () => {
      const created = await sample('POST /webhooks', http().post('/webhooks').set(as(acme)).send({ url: 'https://hooks.example.com/strata', events: ['invoice.created'] }));
      expect(created.status).toBe(201);
      expect((await sample('POST /webhooks', http().post('/webhooks').set(as(acme)).send({ url: 'http://127.0.0.1:8080/' }))).body.error).toBe('invalid_webhook_url');
      expect((await sample('POST /webhooks', http().post('/webhooks').set(as(acme)).set('authorization', `Bearer ${member}`).send({ url: 'https://x.example.com/' }))).body.error).toBe('forbidden_role');
      // An invoice fills the endpoint's delivery log (pending: no worker runs here).
      await http().post('/invoices').set(as(acme)).send({ number: `INV-${randomUUID().slice(0, 8)}`, amount: 1, currency: 'USD' }).expect(201);
      await sample('GET /webhooks', http().get('/webhooks').set(as(acme)));
      await sample('GET /webhooks/:id', http().get(`/webhooks/${created.body.id}`).set(as(acme)));
      const deliveries = await sample('GET /webhooks/:id/deliveries', http().get(`/webhooks/${created.body.id}/deliveries`).set(as(acme)));
      expect(deliveries.body.items.length).toBeGreaterThan(0);
      expect((await sample('GET /webhooks/deliveries', http().get('/webhooks/deliveries?status=pending').set(as(acme)))).status).toBe(200);
      const id = created.body.id;
      expect((await sample('POST /webhooks/:id/rotate-secret', http().post(`/webhooks/${id}/rotate-secret`).set(as(acme)))).status).toBe(200);
      expect((await sample('POST /webhooks/:id/ping', http().post(`/webhooks/${id}/ping`).set(as(acme)))).status).toBe(202);
      const redeliver = (deliveryId: string) => http().post(`/webhooks/${id}/deliveries/${deliveryId}/redeliver`).set(as(acme));
      expect((await sample('POST /webhooks/:id/deliveries/:deliveryId/redeliver', redeliver(deliveries.body.items[0].id))).status).toBe(202);
      expect((await sample('POST /webhooks/:id/deliveries/:deliveryId/redeliver', redeliver(MISSING))).body.error).toBe('webhook_delivery_not_found');
      expect((await sample('PATCH /webhooks/:id', http().patch(`/webhooks/${id}`).set(as(acme)).send({ enabled: false }))).status).toBe(200);
      expect((await sample('POST /webhooks/:id/ping', http().post(`/webhooks/${id}/ping`).set(as(acme)))).body.error).toBe('webhook_disabled');
      expect((await sample('PATCH /webhooks/:id', http().patch(`/webhooks/${id}`).set(as(acme)).send({ url: 'http://10.0.0.1/' }))).body.error).toBe('invalid_webhook_url');
      expect((await sample('DELETE /webhooks/:id', http().delete(`/webhooks/${id}`).set(as(acme)))).status).toBe(204);
      // The log of a deleted endpoint is kept for the retention; the endpoint itself is gone.
      expect((await sample('GET /webhooks/:id/deliveries', http().get(`/webhooks/${id}/deliveries`).set(as(acme)))).status).toBe(200);
      expect((await sample('GET /webhooks/:id', http().get(`/webhooks/${id}`).set(as(acme)))).body.error).toBe('webhook_not_found');
    });

    it('a suspended tenant: its members get the documented 403 tenant_suspended', async () => {
      const other = await t.onboard('paused', 'pool');
      expect((await sample('POST /admin/tenants/:id/suspend', http().post(`/admin/tenants/${other.id}/suspend`).set(admin()))).status).toBe(200);
      expect((await sample('GET /projects', http().get('/projects').set(as(other)))).body.error).toBe('tenant_suspended');
      expect((await sample('POST /auth/login', http().post('/auth/login').set('X-Tenant', other.slug).send({ email: other.email, password: other.password }))).body.error).toBe('tenant_suspended');
      expect((await sample('POST /admin/tenants/:id/suspend', http().post(`/admin/tenants/${MISSING}/suspend`).set(admin()))).body.error).toBe('tenant_not_found');
      expect((await sample('POST /admin/tenants/:id/activate', http().post(`/admin/tenants/${other.id}/activate`).set(admin()))).status).toBe(200);
    });

    it('a tenant in maintenance gets the documented 503 tenant_maintenance; a deleted one has a deletion report', async () => {
      const other = await t.onboard('upkeep', 'pool');
      expect((await sample('POST /admin/tenants/:id/maintenance', http().post(`/admin/tenants/${other.id}/maintenance`).set(admin()).send({ on: true, reason: 'contract' }))).status).toBe(200);
      expect((await sample('GET /projects', http().get('/projects').set(as(other)))).body.error).toBe('tenant_maintenance');
      expect((await sample('POST /auth/login', http().post('/auth/login').set('X-Tenant', other.slug).send({ email: other.email, password: other.password }))).body.error).toBe('tenant_maintenance');
      expect((await sample('POST /admin/tenants/:id/maintenance', http().post(`/admin/tenants/${other.id}/maintenance`).set(admin()).send({ on: false }))).status).toBe(200);
      expect((await sample('POST /admin/tenants/:id/maintenance', http().post(`/admin/tenants/${MISSING}/maintenance`).set(admin()).send({ on: true }))).body.error).toBe('tenant_not_found');
      expect((await sample('GET /admin/tenants/:id/deletion-report', http().get(`/admin/tenants/${other.id}/deletion-report`).set(admin()))).body.error).toBe('deletion_not_found');
      expect((await sample('DELETE /admin/tenants/:id', http().delete(`/admin/tenants/${other.id}`).set(admin()))).status).toBe(202);
      expect((await sample('GET /admin/tenants/:id/deletion-report', http().get(`/admin/tenants/${other.id}/deletion-report`).set(admin()))).status).toBe(200);
      expect((await sample('DELETE /admin/tenants/:id', http().delete(`/admin/tenants/${MISSING}`).set(admin()))).body.error).toBe('tenant_not_found');
      // 409 while it is deleting, 404 once deleted: both documented.
      expect([404, 409]).toContain((await sample('POST /admin/tenants/:id/maintenance', http().post(`/admin/tenants/${other.id}/maintenance`).set(admin()).send({ on: true }))).status);
    });

    it("the operators' tenant and pool routes, with 400/401/403/404/409 answers", async () => {
      const slug = `contract-${randomUUID().slice(0, 8)}`;
      const created = await sample('POST /admin/tenants', http().post('/admin/tenants').set(admin()).send({ slug, name: 'Contract Inc', tier: 'pool' }));
      expect(created.status).toBe(201);
      expect((await sample('POST /admin/tenants', http().post('/admin/tenants').set(admin()).send({ slug, name: 'Again', tier: 'pool' }))).body.error).toBe('tenant_slug_taken');
      expect((await sample('POST /admin/tenants', http().post('/admin/tenants').set(admin()).send({ slug: 'X', tier: 'moon' }))).body.error).toBe('validation_failed');
      expect((await sample('POST /admin/tenants', http().post('/admin/tenants').set(admin()).send({ slug: `${slug}-b`, name: 'B', tier: 'pool', poolId: 'no-such-pool' }))).body.error).toBe('invalid_pool');
      expect((await sample('GET /admin/tenants', http().get('/admin/tenants'))).body.error).toBe('unauthenticated');
      expect((await sample('GET /admin/tenants', http().get('/admin/tenants').set('authorization', `Bearer ${acme.token}`))).body.error).toBe('platform_admin_required');
      await sample('GET /admin/tenants', http().get('/admin/tenants').set(admin()));
      await sample('GET /admin/tenants/:id', http().get(`/admin/tenants/${created.body.id}`).set(admin()));
      expect((await sample('GET /admin/tenants/:id', http().get(`/admin/tenants/${MISSING}`).set(admin()))).body.error).toBe('tenant_not_found');
      const user = { email: `someone@${slug}.test`, password: 'correct-horse-battery', role: 'admin' };
      expect((await sample('POST /admin/tenants/:id/users', http().post(`/admin/tenants/${created.body.id}/users`).set(admin()).send(user))).status).toBe(201);
      expect((await sample('POST /admin/tenants/:id/users', http().post(`/admin/tenants/${created.body.id}/users`).set(admin()).send(user))).body.error).toBe('membership_exists');
      await sample('GET /admin/pools', http().get('/admin/pools').set(admin()));
      const pool = { id: 'main-pool', kind: 'pool', host: '127.0.0.1', port: 5432, database: 'strata' };
      expect((await sample('POST /admin/pools', http().post('/admin/pools').set(admin()).send(pool))).body.error).toBe('pool_exists');
      expect((await sample('POST /admin/pools', http().post('/admin/pools').set(admin()).send({ ...pool, port: 70000 }))).body.error).toBe('validation_failed');
    });

    it('onboarding: ?async=true answers 202; self-service signup (201, the poll, a retry, a taken slug, bad input, an unknown id)', async () => {
      const queued = await sample('POST /admin/tenants', http().post('/admin/tenants?async=true').set(admin()).send({ slug: `queued-${randomUUID().slice(0, 8)}`, name: 'Queued', tier: 'pool' }));
      expect([queued.status, queued.body.status]).toEqual([202, 'provisioning']);
      const slug = `signup-${randomUUID().slice(0, 8)}`;
      const signup = { company: 'Contract Signup', slug, email: `founder@${slug}.test`, password: 'correct-horse-battery' };
      const created = await sample('POST /signup', http().post('/signup').send(signup));
      expect(created.status).toBe(201);
      await sample('GET /signup/:id', http().get(`/signup/${created.body.tenantId}`));
      expect((await sample('GET /signup/:id', http().get(`/signup/${MISSING}`))).body.error).toBe('signup_not_found');
      // The same body again is the client's retry: the first signup's answer. Another owner gets slug_taken.
      expect((await sample('POST /signup', http().post('/signup').send(signup))).body).toEqual(created.body);
      expect((await sample('POST /signup', http().post('/signup').send({ ...signup, email: `other@${slug}.test` }))).body.error).toBe('slug_taken');
      expect((await sample('POST /signup', http().post('/signup').send({ ...signup, slug: 'X' }))).body.error).toBe('validation_failed');
    });

    it('tenant moves: request, follow, list and cancel a move, with the refusals', async () => {
      const mover = await t.onboard('mover', 'pool');
      expect((await sample('POST /admin/tenants/:id/moves', http().post(`/admin/tenants/${mover.id}/moves`).set(admin()).send({ toTier: 'pool' }))).body.error).toBe('move_noop');
      expect((await sample('POST /admin/tenants/:id/moves', http().post(`/admin/tenants/${MISSING}/moves`).set(admin()).send({ toTier: 'bridge' }))).body.error).toBe('tenant_not_found');
      expect((await sample('POST /admin/tenants/:id/moves', http().post(`/admin/tenants/${mover.id}/moves`).set(admin()).send({ toTier: 'bridge', toPoolId: 'main-silo' }))).body.error).toBe('pool_kind_mismatch');
      const move = await sample('POST /admin/tenants/:id/moves', http().post(`/admin/tenants/${mover.id}/moves`).set(admin()).send({ toTier: 'bridge' }));
      expect(move.status).toBe(202);
      await sample('GET /admin/moves/:id', http().get(`/admin/moves/${move.body.id}`).set(admin()));
      expect((await sample('GET /admin/moves/:id', http().get(`/admin/moves/${MISSING}`).set(admin()))).body.error).toBe('move_not_found');
      // 202 when it is still before its cutover, 409 move_not_cancellable once past it: both documented.
      expect([202, 409]).toContain((await sample('POST /admin/moves/:id/cancel', http().post(`/admin/moves/${move.body.id}/cancel`).set(admin()))).status);
      expect((await sample('POST /admin/moves/:id/cancel', http().post(`/admin/moves/${MISSING}/cancel`).set(admin()))).body.error).toBe('move_not_found');
      const deadline = Date.now() + 60_000;
      let phase = move.body.phase as string;
      while (!(TERMINAL_PHASES as readonly string[]).includes(phase) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        phase = (await sample('GET /admin/moves/:id', http().get(`/admin/moves/${move.body.id}`).set(admin()))).body.phase;
      }
      expect(TERMINAL_PHASES).toContain(phase);
      await sample('GET /admin/tenants/:id/moves', http().get(`/admin/tenants/${mover.id}/moves`).set(admin()));
      expect((await sample('GET /admin/tenants/:id/moves', http().get(`/admin/tenants/${MISSING}/moves`).set(admin()))).body.error).toBe('tenant_not_found');
    });

    it('tenant exports: request, follow, list and download, as an operator and as the owner, with the refusals', async () => {
      const requested = await sample('POST /admin/tenants/:id/exports', http().post(`/admin/tenants/${acme.id}/exports`).set(admin()));
      expect(requested.status).toBe(202);
      expect((await sample('POST /admin/tenants/:id/exports', http().post(`/admin/tenants/${MISSING}/exports`).set(admin()))).body.error).toBe('tenant_not_found');
      const own = await sample('POST /export', http().post('/export').set(as(acme)));
      expect(own.status).toBe(202);
      expect((await sample('POST /export', http().post('/export').set(as(acme)).set('authorization', `Bearer ${member}`))).body.error).toBe('forbidden_role');
      const deadline = Date.now() + 60_000;
      for (const id of [requested.body.id as string, own.body.id as string]) {
        let state = 'queued';
        while (!(TERMINAL_EXPORT_STATES as readonly string[]).includes(state) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          state = (await sample('GET /admin/exports/:id', http().get(`/admin/exports/${id}`).set(admin()))).body.state;
        }
        expect(state).toBe('done');
      }
      expect((await sample('GET /admin/exports/:id', http().get(`/admin/exports/${MISSING}`).set(admin()))).body.error).toBe('export_not_found');
      await sample('GET /admin/tenants/:id/exports', http().get(`/admin/tenants/${acme.id}/exports`).set(admin()));
      expect((await sample('GET /admin/tenants/:id/exports', http().get(`/admin/tenants/${MISSING}/exports`).set(admin()))).body.error).toBe('tenant_not_found');
      expect((await sample('GET /admin/exports/:id/archive', http().get(`/admin/exports/${requested.body.id}/archive`).set(admin()))).status).toBe(200);
      expect((await sample('GET /admin/exports/:id/archive', http().get(`/admin/exports/${MISSING}/archive`).set(admin()))).body.error).toBe('export_not_found');
      await sample('GET /export', http().get('/export').set(as(acme)));
      await sample('GET /export/:id', http().get(`/export/${own.body.id}`).set(as(acme)));
      expect((await sample('GET /export/:id', http().get(`/export/${MISSING}`).set(as(acme)))).body.error).toBe('export_not_found');
      expect((await sample('GET /export/:id/archive', http().get(`/export/${own.body.id}/archive`).set(as(acme)))).status).toBe(200);
      expect((await sample('GET /export/:id/archive', http().get(`/export/${MISSING}/archive`).set(as(acme)))).body.error).toBe('export_not_found');
    });

    it('the audit log and impersonation: read entries, start, use, list and revoke an impersonation, with the refusals', async () => {
      const page = await sample('GET /admin/audit', http().get('/admin/audit').set(admin()).query({ tenantId: acme.id, limit: 2 }));
      expect(page.body.items.length).toBeGreaterThan(0);
      expect((await sample('GET /admin/audit', http().get('/admin/audit').set(admin()).query({ from: '2030-01-01T00:00:00Z', to: '2029-01-01T00:00:00Z' }))).body.error).toBe('invalid_time_range');
      expect((await sample('GET /admin/audit', http().get('/admin/audit').set(admin()).query({ cursor: 'nope!' }))).body.error).toBe('invalid_cursor');
      await sample('GET /audit', http().get('/audit').set(as(acme)).query({ action: 'tenant.*' }));
      expect((await sample('GET /audit', http().get('/audit').set(as(acme)).set('authorization', `Bearer ${member}`))).body.error).toBe('forbidden_role');

      const memberId = (await http().get('/auth/me').set(as(acme)).set('authorization', `Bearer ${member}`).expect(200)).body.user.id;
      const started = await sample('POST /admin/tenants/:id/impersonate', http().post(`/admin/tenants/${acme.id}/impersonate`).set(admin()).send({ userId: memberId, reason: 'contract check' }));
      expect(started.status).toBe(201);
      expect((await sample('POST /admin/tenants/:id/impersonate', http().post(`/admin/tenants/${MISSING}/impersonate`).set(admin()).send({ userId: memberId, reason: 'contract check' }))).body.error).toBe('tenant_not_found');
      expect((await sample('POST /admin/tenants/:id/impersonate', http().post(`/admin/tenants/${acme.id}/impersonate`).set(admin()).send({ userId: MISSING, reason: 'contract check' }))).body.error).toBe('member_not_found');
      const impersonated = { 'X-Tenant': acme.slug, authorization: `Bearer ${started.body.access_token}` };
      expect((await sample('POST /auth/password', http().post('/auth/password').set(impersonated).send({ currentPassword: 'x', newPassword: 'y'.repeat(8) }))).body.error).toBe('impersonation_forbidden');
      await sample('GET /admin/impersonations', http().get('/admin/impersonations').set(admin()));
      expect((await sample('DELETE /admin/impersonations/:id', http().delete(`/admin/impersonations/${started.body.impersonation.id}`).set(admin()))).status).toBe(204);
      expect((await sample('GET /projects', http().get('/projects').set(impersonated))).body.error).toBe('impersonation_ended');
      expect((await sample('DELETE /admin/impersonations/:id', http().delete(`/admin/impersonations/${MISSING}`).set(admin()))).body.error).toBe('impersonation_not_found');
    });

    it('plans, usage and settings: every route, with the 402 of a create at its limit and 400/404 answers', async () => {
      const tenant = await t.onboard('planned', 'pool');
      expect((await sample('GET /admin/plans', http().get('/admin/plans').set(admin()))).status).toBe(200);
      // The name it already has: a real edit of a shared plan would change what the other samples meet.
      expect((await sample('PATCH /admin/plans/:id', http().patch('/admin/plans/enterprise').set(admin()).send({ name: 'Enterprise' }))).body.id).toBe('enterprise');
      expect((await sample('PATCH /admin/plans/:id', http().patch('/admin/plans/enterprise').set(admin()).send({ quotas: { projects: -1 } }))).body.error).toBe('validation_failed');
      expect((await sample('PATCH /admin/plans/:id', http().patch('/admin/plans/no-such-plan').set(admin()).send({ name: 'x' }))).body.error).toBe('plan_not_found');
      expect((await sample('PATCH /admin/tenants/:id/plan', http().patch(`/admin/tenants/${tenant.id}/plan`).set(admin()).send({ plan: 'free' }))).status).toBe(200);
      expect((await sample('PATCH /admin/tenants/:id/plan', http().patch(`/admin/tenants/${tenant.id}/plan`).set(admin()).send({ plan: 'no-such-plan' }))).body.error).toBe('invalid_plan');
      expect((await sample('PATCH /admin/tenants/:id/plan', http().patch(`/admin/tenants/${MISSING}/plan`).set(admin()).send({ plan: 'free' }))).body.error).toBe('tenant_not_found');
      for (const name of ['a', 'b', 'c']) expect((await sample('POST /projects', http().post('/projects').set(as(tenant)).send({ name }))).status).toBe(201);
      expect((await sample('POST /projects', http().post('/projects').set(as(tenant)).send({ name: 'd' }))).body.error).toBe('plan_limit_reached');
      expect((await sample('GET /usage', http().get('/usage').set(as(tenant)))).body.projects).toEqual({ used: 3, limit: 3 });
      expect((await sample('GET /admin/tenants/:id/usage', http().get(`/admin/tenants/${tenant.id}/usage`).set(admin()))).status).toBe(200);
      expect((await sample('GET /admin/tenants/:id/usage', http().get(`/admin/tenants/${MISSING}/usage`).set(admin()))).body.error).toBe('tenant_not_found');
      expect((await sample('GET /settings', http().get('/settings').set(as(tenant)))).status).toBe(200);
      expect((await sample('PATCH /settings', http().patch('/settings').set(as(tenant)).send({ locale: 'de-DE', notifications: { weeklyDigest: true } }))).status).toBe(200);
      expect((await sample('PATCH /settings', http().patch('/settings').set(as(tenant)).send({ locale: 'German' }))).body.error).toBe('validation_failed');
      expect((await sample('GET /admin/tenants/:id/settings', http().get(`/admin/tenants/${tenant.id}/settings`).set(admin()))).status).toBe(200);
      expect((await sample('GET /admin/tenants/:id/settings', http().get(`/admin/tenants/${MISSING}/settings`).set(admin()))).body.error).toBe('tenant_not_found');
      const override = { features: { fileSharing: true }, settings: { currency: 'CHF' } };
      expect((await sample('PATCH /admin/tenants/:id/settings', http().patch(`/admin/tenants/${tenant.id}/settings`).set(admin()).send(override))).status).toBe(200);
      expect((await sample('PATCH /admin/tenants/:id/settings', http().patch(`/admin/tenants/${tenant.id}/settings`).set(admin()).send({ features: { x: 1 } }))).body.error).toBe('validation_failed');
      expect((await sample('PATCH /admin/tenants/:id/settings', http().patch(`/admin/tenants/${MISSING}/settings`).set(admin()).send(override))).body.error).toBe('tenant_not_found');
    });

    it('health probes and metrics', async () => {
      await sample('GET /health/live', http().get('/health/live'));
      expect([200, 503]).toContain((await sample('GET /health/ready', http().get('/health/ready'))).status);
      const metrics = await sample('GET /metrics', http().get('/metrics'));
      expect([metrics.status, metrics.headers['content-type']]).toEqual([200, expect.stringMatching(/^text\/plain/)]);
    });

    it('found no answer that differs from the document, and sampled a success of every route and every kind of error', () => {
      expect(mismatches).toEqual([]);
      // Success answers these routes cannot give here, and where they are covered instead.
      const excused: Record<string, string> = {
        'POST /admin/pools': 'registering needs a second database server (test/e2e/admin-pools.e2e-spec.ts)',
      };
      const succeeded = new Set(sampled.filter((s) => s.status < 300).map((s) => `${locate(s.route).method.toUpperCase()} ${locate(s.route).path}`));
      const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
      expect(documented.filter((r) => !succeeded.has(r) && !(r in excused))).toEqual([]);
      const statuses = new Set(sampled.map((s) => s.status));
      expect([304, 400, 401, 402, 403, 404, 409, 413, 415, 416, 422, 503].filter((s) => !statuses.has(s))).toEqual([]);
    });
  });
});
