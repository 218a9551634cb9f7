import { RequestMethod, type INestApplication } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { DiscoveryService, MetadataScanner, ModulesContainer } from '@nestjs/core';
import {
  DocumentBuilder,
  SwaggerModule,
  type OpenAPIObject,
  type OperationObject,
  type ParameterObject,
  type ReferenceObject,
  type ResponseObject,
  type SchemaObject,
} from '@nestjs/swagger';
import { CommonErrorCode, declaredApiErrors, mergeErrorMaps, UuidPipe, type ApiErrorMap, type StrataConfig } from '#strata/common';
import { AuthErrorCode, PLATFORM_ADMIN_BEARER, TENANT_BEARER } from '#strata/auth';
import { IdempotencyErrorCode } from '#strata/idempotency';
import { TenancyErrorCode } from '#strata/tenancy/platform';

/** The headers every answer carries or may carry, documented once under components. */
const REQUEST_ID = 'X-Request-Id';
const RETRY_AFTER = 'Retry-After';
const IDEMPOTENT_REPLAYED = 'Idempotent-Replayed';
const IDEMPOTENCY_KEY = 'Idempotency-Key';

// What a JSON body can earn before the handler runs: the validation pipe, the body parser, its reviver.
const JSON_BODY_ERRORS: ApiErrorMap = {
  400: [
    CommonErrorCode.validationFailed,
    CommonErrorCode.invalidJson,
    CommonErrorCode.jsonTooDeep,
    CommonErrorCode.invalidUnicode,
    CommonErrorCode.bodyNotObject,
    CommonErrorCode.jsonTooWide,
    CommonErrorCode.jsonTooManyValues,
  ],
  413: [CommonErrorCode.payloadTooLarge],
  415: [CommonErrorCode.unsupportedMediaType],
};
// RequestShapeInterceptor: every route refuses a query parameter it does not define.
const EVERY_ROUTE_ERRORS: ApiErrorMap = { 400: [CommonErrorCode.unknownQueryParameter], 500: [CommonErrorCode.internalError] };

/** The answers that carry `Retry-After` (a retry soon will likely succeed); other 503s (provisioning_failed …) do not. */
export const RETRY_AFTER_CODES: readonly string[] = [
  TenancyErrorCode.tenantUnavailable,
  TenancyErrorCode.tenantBusy,
  TenancyErrorCode.statementTimeout,
  TenancyErrorCode.lockTimeout,
  TenancyErrorCode.idleInTransactionTimeout,
  TenancyErrorCode.concurrencyLimited,
  TenancyErrorCode.tenantMoving,
  TenancyErrorCode.tenantCapacity,
  TenancyErrorCode.tenantMigrating,
  CommonErrorCode.unavailable,
  IdempotencyErrorCode.idempotencyKeyInUse,
  AuthErrorCode.MailNotSent,
  AuthErrorCode.ImpersonationNotNotified,
  AuthErrorCode.TenantMaintenance,
];

const DESCRIPTION = `A multi-tenant B2B API. Every error answers \`{statusCode, error, message}\` with a stable \`error\`
code (each response below lists the codes it can carry); \`message\` is for people and may change.
A request the HTTP parser cannot read reaches no route: it answers \`400 malformed_request\` (e.g. a
raw non-ASCII byte in the URL: percent-encode it), \`431 headers_too_large\` or \`408 request_timeout\`,
in the same shape, and the connection closes.

**Naming the tenant.** A tenant route needs the tenant named on the wire, in any one of three ways
(all that are sent must agree): the \`X-Tenant: {slug}\` header, the \`/t/{slug}\` path prefix
(\`/t/acme/projects\` is \`/projects\` for \`acme\`; pick the second server below) or, when the
deployment sets \`BASE_DOMAIN\`, the host \`{slug}.BASE_DOMAIN\`. An unknown tenant, a token for another
tenant and a missing membership all answer \`404 tenant_not_found\`.

**Tokens.** Tenant routes take a member's bearer token from \`POST /auth/login\` (security scheme
\`${TENANT_BEARER}\`; the scopes listed on each route are the least membership role it needs:
member < admin < owner). Operators' routes (\`/admin/*\`) take a token with \`scope: "platform:admin"\`
(\`${PLATFORM_ADMIN_BEARER}\`).

**Lists** answer \`{items, nextCursor}\`, newest first; pass \`nextCursor\` back as \`?cursor=\` with the same filters.
A query parameter a route does not define is \`400 unknown_query_parameter\` on every route.
**Forms**: \`400 validation_failed\` carries \`details: [{field, code, message}]\`, one per failing field.
**Creates** accept an \`Idempotency-Key\`; a retry with the same key replays the first answer.
**503** answers and \`429 concurrency_limited\` (a tenant's requests in flight on one instance are bounded by its plan) carry \`Retry-After\`; every answer carries \`X-Request-Id\` (send your own to correlate).`;

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);
const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
/** `ProjectsController.list` → `projectsList`: stable, unique, and readable as a generated client's method name. */
export const operationIdOf = (controllerKey: string, methodKey: string) => `${lowerFirst(controllerKey.replace(/Controller$/, ''))}${upperFirst(methodKey)}`;

export interface RouteHandler {
  /** `GET /projects/:id`, as Nest registers it. */
  name: string;
  method: string;
  /** The OpenAPI path: `/projects/{id}`. */
  path: string;
  operationId: string;
  controller: object;
  handler: object;
  methodKey: string;
}

/**
 * Every route handler the app registered, from Nest's discovery (not from a list): the document
 * is checked against this (test/e2e/openapi.e2e-spec.ts), so a route cannot go undocumented.
 */
export function routeHandlers(app: INestApplication): RouteHandler[] {
  const discovery = new DiscoveryService(app.get(ModulesContainer));
  const scanner = new MetadataScanner();
  const out: RouteHandler[] = [];
  for (const wrapper of discovery.getControllers()) {
    const { metatype, instance } = wrapper;
    if (!metatype || !instance) continue;
    const base = String(Reflect.getMetadata(PATH_METADATA, metatype) ?? '').replace(/^\/|\/$/g, '');
    for (const methodKey of scanner.getAllMethodNames(Object.getPrototypeOf(instance))) {
      const handler = (instance as Record<string, unknown>)[methodKey] as object;
      const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
      const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (path === undefined || method === undefined) continue;
      const full = `/${[base, String(path).replace(/^\/|\/$/g, '')].filter(Boolean).join('/')}`;
      out.push({
        name: `${RequestMethod[method]} ${full}`,
        method: RequestMethod[method].toLowerCase(),
        path: full.replace(/:([A-Za-z0-9_]+)/g, '{$1}'),
        operationId: operationIdOf(metatype.name, methodKey),
        controller: metatype,
        handler,
        methodKey,
      });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

interface RouteArg {
  index: number;
  data?: unknown;
  pipes?: unknown[];
}

function routeArgs(route: RouteHandler): Array<RouteArg & { type: number }> {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, route.controller, route.methodKey) ?? {}) as Record<string, RouteArg>;
  return Object.entries(args).map(([key, arg]) => ({ ...arg, type: Number(key.split(':')[0]) }));
}

const isRef = (x: unknown): x is ReferenceObject => typeof x === 'object' && x !== null && '$ref' in x;

function errorSchema(status: number, codes: string[]): SchemaObject {
  return {
    type: 'object',
    required: ['statusCode', 'error', 'message'],
    properties: {
      statusCode: { type: 'integer', enum: [status] },
      error: { type: 'string', enum: [...codes].sort() },
      message: { type: 'string', description: 'for people: says what went wrong and what to send instead; may change' },
      details: {
        type: 'array',
        description: 'with `validation_failed`: one entry per failing field (the first rule it broke), for a form to show next to it',
        items: {
          type: 'object',
          required: ['field', 'code', 'message'],
          properties: {
            field: { type: 'string', description: 'dotted path of the field: `name`, `items.0.name`', examples: ['items.0.name'] },
            code: { type: 'string', description: 'the rule, in snake_case: `is_not_empty`, `is_uuid`, `max_length`, `unknown_field` …', examples: ['is_uuid'] },
            message: { type: 'string', description: 'for people; may change' },
          },
        },
      },
    },
  };
}

/**
 * Adds what the decorators leave to the platform: the error answers of every route (declared ones
 * plus what its parameters imply) as `{statusCode, error, message}` with the codes as an enum, the
 * formats of UUID path ids, and the headers (`X-Request-Id`, `Retry-After`, `Idempotent-Replayed`).
 */
function completeOperation(operation: OperationObject, route: RouteHandler): void {
  const args = routeArgs(route);
  const implied: ApiErrorMap[] = [EVERY_ROUTE_ERRORS];
  for (const arg of args) {
    if (arg.type === RouteParamtypes.PARAM && typeof arg.data === 'string' && arg.pipes?.includes(UuidPipe)) {
      implied.push({ 400: [CommonErrorCode.invalidId] });
      const param = operation.parameters?.find((p): p is ParameterObject => !isRef(p) && p.in === 'path' && p.name === arg.data);
      if (param) param.schema = { type: 'string', format: 'uuid' };
    }
    // A query DTO refuses unknown and malformed parameters (forbidNonWhitelisted).
    if (arg.type === RouteParamtypes.QUERY) implied.push({ 400: [CommonErrorCode.validationFailed] });
  }
  const body = operation.requestBody && !isRef(operation.requestBody) ? operation.requestBody : undefined;
  if (body?.content['application/json']) {
    body.required = true;
    implied.push(JSON_BODY_ERRORS);
  }
  const errors = mergeErrorMaps(...implied, declaredApiErrors(route.controller, route.handler));

  operation.parameters = [...(operation.parameters ?? []), { $ref: `#/components/parameters/${REQUEST_ID}` }];
  const idempotent = operation.parameters.some((p) => !isRef(p) && p.in === 'header' && p.name === IDEMPOTENCY_KEY);
  const responses = operation.responses as Record<string, ResponseObject>;
  for (const [status, codes] of Object.entries(errors)) {
    const existing = responses[status];
    // A route that documents an error body itself (readiness' 503 with details) keeps it.
    if (existing?.content) continue;
    responses[status] = {
      description: codes.map((c) => `\`${c}\``).join(', '),
      content: { 'application/json': { schema: errorSchema(Number(status), codes) } },
    };
  }
  for (const [status, response] of Object.entries(responses)) {
    const code = Number(status);
    const headers: Record<string, ReferenceObject> = { [REQUEST_ID]: { $ref: `#/components/headers/${REQUEST_ID}` } };
    if (errors[code]?.some((c) => RETRY_AFTER_CODES.includes(c))) headers[RETRY_AFTER] = { $ref: `#/components/headers/${RETRY_AFTER}` };
    if (idempotent && code >= 200 && code < 300) headers[IDEMPOTENT_REPLAYED] = { $ref: `#/components/headers/${IDEMPOTENT_REPLAYED}` };
    response.headers = { ...response.headers, ...headers };
    response.description ||= code < 300 ? 'success' : 'error';
  }
}

export interface ApiDocsOptions {
  version?: string;
}

/** Every code in the document, for the shared `ApiError` schema clients can name. */
function allErrorCodes(document: OpenAPIObject): string[] {
  const codes = new Set<string>();
  for (const item of Object.values(document.paths)) {
    for (const op of Object.values(item) as OperationObject[]) {
      for (const [status, res] of Object.entries(op.responses ?? {})) {
        if (Number(status) < 400 || !res || isRef(res)) continue;
        const schema = res.content?.['application/json']?.schema as SchemaObject | undefined;
        const error = schema?.properties?.error as SchemaObject | undefined;
        for (const c of (error?.enum as string[] | undefined) ?? []) codes.add(c);
      }
    }
  }
  return [...codes].sort();
}

/** The OpenAPI 3.1 document of every route the app serves. */
export function buildOpenApiDocument(app: INestApplication, config: Pick<StrataConfig, 'baseDomain'>, options: ApiDocsOptions = {}): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setOpenAPIVersion('3.1.0')
    .setTitle('Strata API')
    .setVersion(options.version ?? '0.1.0')
    .setDescription(DESCRIPTION)
    .addServer('/', 'this server; name the tenant with the X-Tenant header')
    .addServer('/t/{tenant}', 'this server, the tenant named in the path', { tenant: { default: 'acme', description: 'tenant slug' } });
  if (config.baseDomain) {
    builder.addServer(`{scheme}://{tenant}.${config.baseDomain}`, 'the tenant named by its subdomain of BASE_DOMAIN', {
      scheme: { default: 'https', enum: ['https', 'http'] },
      tenant: { default: 'acme', description: 'tenant slug' },
    });
  }
  builder
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'a member\'s token from POST /auth/login (claims sub, tid, role)' }, TENANT_BEARER)
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'an operator\'s token with `scope: "platform:admin"`, signed with AUTH_JWT_SECRET' },
      PLATFORM_ADMIN_BEARER,
    );
  const document = SwaggerModule.createDocument(app, builder.build(), { operationIdFactory: operationIdOf });

  const byOperationId = new Map<string, OperationObject>();
  for (const item of Object.values(document.paths)) {
    for (const op of Object.values(item) as OperationObject[]) if (op?.operationId) byOperationId.set(op.operationId, op);
  }
  for (const route of routeHandlers(app)) {
    const operation = byOperationId.get(route.operationId);
    if (operation) completeOperation(operation, route);
  }

  const components = (document.components ??= {});
  components.parameters = {
    ...components.parameters,
    [REQUEST_ID]: {
      name: REQUEST_ID,
      in: 'header',
      required: false,
      description: 'your id for this request (8–128 of `A-Za-z0-9._:-`), echoed in the answer and the logs; otherwise one is made',
      schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{8,128}$' },
    },
  };
  components.headers = {
    ...components.headers,
    [REQUEST_ID]: { description: "the request's id (yours, or one made for it): quote it when reporting a problem", schema: { type: 'string' } },
    [RETRY_AFTER]: {
      description: `seconds to wait before retrying; sent with ${RETRY_AFTER_CODES.map((c) => `\`${c}\``).join(', ')}`,
      schema: { type: 'string', pattern: '^[0-9]+$' },
    },
    [IDEMPOTENT_REPLAYED]: { description: '`true` when this is the stored first answer of the Idempotency-Key, replayed', schema: { type: 'string', enum: ['true'] } },
  };
  components.schemas = {
    ...components.schemas,
    ApiError: {
      ...errorSchema(400, allErrorCodes(document)),
      description: 'every error answer; each response names the codes it can carry',
      properties: { ...errorSchema(400, allErrorCodes(document)).properties, statusCode: { type: 'integer', minimum: 400, maximum: 599 } },
    },
  };
  return document;
}
