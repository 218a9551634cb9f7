import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A client's own `X-Request-Id` is kept when it looks like an id (and cannot smuggle anything into logs); otherwise one is made. */
export const REQUEST_ID_RULE = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Mounted first (app.factory): fixes the request's id before anything can fail, so an answer the
 * JSON body parser refuses (invalid_json, payload_too_large), which comes before the request's CLS
 * context exists, carries `X-Request-Id` like every other. The CLS middleware then adopts this id.
 */
export function requestIdMiddleware(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID_RULE.test(given) ? given : randomUUID();
  req.headers['x-request-id'] = id;
  res.setHeader('X-Request-Id', id);
  next();
}
