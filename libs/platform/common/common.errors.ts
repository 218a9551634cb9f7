/**
 * The stable `error` codes #strata/common itself answers with (validation pipe, body parser, cursor,
 * the error filter's fallbacks), in one place: the OpenAPI document and the tests list them from here.
 */
export const CommonErrorCode = {
  /** 400: a body, query or path value failed its DTO rules (unknown body fields included); `details` names each field. */
  validationFailed: 'validation_failed',
  /** 400: a query parameter the route does not define (every route refuses them; the message names it). */
  unknownQueryParameter: 'unknown_query_parameter',
  /** 400: a JSON body that is an array, string, number or null where the route expects an object. */
  bodyNotObject: 'body_not_object',
  /** 415: a body sent with a content type other than `application/json` to a JSON route. */
  unsupportedMediaType: 'unsupported_media_type',
  /** 400: a path id is not a UUID. */
  invalidId: 'invalid_id',
  /** 400: the body is not valid JSON. */
  invalidJson: 'invalid_json',
  /** 400: the JSON body nests deeper than MAX_JSON_DEPTH. */
  jsonTooDeep: 'json_too_deep',
  /** 400: a string in the JSON body is not well-formed Unicode (a lone surrogate). */
  invalidUnicode: 'invalid_unicode',
  /** 400: an object or array in the JSON body has more than MAX_JSON_MEMBERS members. */
  jsonTooWide: 'json_too_wide',
  /** 400: the JSON body holds more than MAX_JSON_VALUES values. */
  jsonTooManyValues: 'json_too_many_values',
  /** 400: Node's HTTP parser refused the request (a raw non-ASCII byte in the URL, bad framing); the connection closes. */
  malformedRequest: 'malformed_request',
  /** 408: the request did not arrive within the server's request timeout; the connection closes. */
  requestTimeout: 'request_timeout',
  /** 431: the request headers exceed Node's limit (16 KB); the connection closes. */
  headersTooLarge: 'headers_too_large',
  /** 400: `?cursor=` is not a `nextCursor` this API issued. */
  invalidCursor: 'invalid_cursor',
  /** 413: the JSON body is larger than the parser's limit. */
  payloadTooLarge: 'payload_too_large',
  /** 503: a database outside the tenant's unit (the control plane) cannot be reached; `Retry-After`. */
  unavailable: 'unavailable',
  /** 500: a fault of ours; the message says no more. */
  internalError: 'internal_error',
} as const;
export type CommonErrorCode = (typeof CommonErrorCode)[keyof typeof CommonErrorCode];
