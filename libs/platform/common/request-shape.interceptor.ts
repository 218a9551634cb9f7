import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import type { Request } from 'express';
import type { Observable } from 'rxjs';
import { ApiException } from './api.exception';
import { CommonErrorCode } from './common.errors';
import { unknownQueryParameters } from './validation';

interface RouteShape {
  /** A @Query() DTO: the validation pipe refuses unknown parameters itself. */
  queryDto: boolean;
  /** The names of @Query('name') parameters. */
  queryNames: Set<string>;
  /** The route reads a JSON body (@Body). */
  jsonBody: boolean;
}

const shapes = new WeakMap<object, RouteShape>();

function shapeOf(context: ExecutionContext): RouteShape {
  const handler = context.getHandler();
  let shape = shapes.get(handler);
  if (!shape) {
    const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), handler.name) ?? {}) as Record<string, { data?: unknown }>;
    shape = { queryDto: false, queryNames: new Set(), jsonBody: false };
    for (const [key, arg] of Object.entries(args)) {
      const type = Number(key.split(':')[0]);
      if (type === RouteParamtypes.QUERY) {
        if (typeof arg.data === 'string') shape.queryNames.add(arg.data);
        else shape.queryDto = true;
      }
      if (type === RouteParamtypes.BODY) shape.jsonBody = true;
    }
    shapes.set(handler, shape);
  }
  return shape;
}

const hasBody = (req: Request) => req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/**
 * The request rules every route shares, from the route's own parameters (not a list): a query
 * parameter the route does not take is 400 `unknown_query_parameter` (a typo'd filter silently
 * ignored would answer the unfiltered list), and a body a JSON route cannot read (the JSON parser
 * skipped it for its content type) is 415 rather than a DTO that fails as if nothing was sent.
 * Multipart routes read their body through @UploadedFile, not @Body, and are not concerned.
 */
@Injectable()
export class RequestShapeInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const req = context.switchToHttp().getRequest<Request>();
    const shape = shapeOf(context);
    if (!shape.queryDto) {
      const unknown = Object.keys(req.query ?? {}).filter((k) => !shape.queryNames.has(k));
      if (unknown.length) throw unknownQueryParameters(unknown);
    }
    if (shape.jsonBody && hasBody(req) && !req.is('application/json')) {
      throw new ApiException(
        415,
        CommonErrorCode.unsupportedMediaType,
        `send the body as JSON with "Content-Type: application/json"${req.headers['content-type'] ? `, not "${String(req.headers['content-type']).slice(0, 100)}"` : ''}`,
      );
    }
    return next.handle();
  }
}
