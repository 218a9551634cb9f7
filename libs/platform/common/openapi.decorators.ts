import { applyDecorators, type Type } from '@nestjs/common';
import { ApiExtraModels, ApiOkResponse, getSchemaPath } from '@nestjs/swagger';
import { CommonErrorCode } from './common.errors';

/**
 * The error answers a route can give, as HTTP status → stable `error` codes. Kept as our own
 * metadata (not @ApiResponse) because several decorators contribute codes to the same status (the
 * access decorator its 404 tenant_not_found, the route its 404 project_not_found) and
 * @nestjs/swagger keeps only the last response per status; libs/platform/api-docs renders the union
 * into one `{statusCode, error, message}` response per status with `error` as an enum.
 */
export const API_ERRORS = 'strata:api-errors';
export type ApiErrorMap = Readonly<Partial<Record<number, readonly string[]>>>;

export function mergeErrorMaps(...maps: Array<ApiErrorMap | undefined>): Record<number, string[]> {
  const out: Record<number, string[]> = {};
  for (const map of maps) {
    for (const [status, codes] of Object.entries(map ?? {})) {
      const seen = (out[Number(status)] ??= []);
      for (const code of codes ?? []) if (!seen.includes(code)) seen.push(code);
    }
  }
  return out;
}

/**
 * `@ApiErrors({ 404: [ProjectsErrorCode.projectNotFound] })` on a route, or on a controller for all
 * of its routes. Accumulates: every call adds codes, none replaces them.
 */
export function ApiErrors(errors: ApiErrorMap): ClassDecorator & MethodDecorator {
  return ((target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder = (descriptor?.value ?? target) as object;
    Reflect.defineMetadata(API_ERRORS, mergeErrorMaps(Reflect.getOwnMetadata(API_ERRORS, holder) as ApiErrorMap | undefined, errors), holder);
    return descriptor ?? target;
  }) as ClassDecorator & MethodDecorator;
}

/** The error codes declared on a route: its controller's, then its own. */
export function declaredApiErrors(controller: object, handler: object): Record<number, string[]> {
  return mergeErrorMaps(Reflect.getOwnMetadata(API_ERRORS, controller) as ApiErrorMap | undefined, Reflect.getOwnMetadata(API_ERRORS, handler) as ApiErrorMap | undefined);
}

/** `200 {items, nextCursor}` of a keyset-paginated list of `item`, with the cursor's own error. */
export function ApiPageResponse(item: Type<unknown>, description = 'one page, newest first'): MethodDecorator {
  return applyDecorators(
    ApiExtraModels(item),
    ApiOkResponse({
      description,
      schema: {
        type: 'object',
        required: ['items', 'nextCursor'],
        properties: {
          items: { type: 'array', items: { $ref: getSchemaPath(item) } },
          nextCursor: { type: 'string', nullable: true, description: 'pass it back as `?cursor=` for the next page; null on the last page' },
        },
      },
    }),
    ApiErrors({ 400: [CommonErrorCode.invalidCursor, CommonErrorCode.validationFailed] }),
  );
}

/** `200 {items}`: a whole (unpaginated) list of `item`. */
export function ApiItemsResponse(item: Type<unknown>, description = 'every item'): MethodDecorator {
  return applyDecorators(
    ApiExtraModels(item),
    ApiOkResponse({
      description,
      schema: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: { $ref: getSchemaPath(item) } } } },
    }),
  );
}
