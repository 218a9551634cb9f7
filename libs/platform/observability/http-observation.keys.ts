/**
 * The CLS store a request ran in, pinned on its response. pino-http logs and the metrics
 * middleware observe a request on the response's 'finish'/'close' events, whose async context is
 * not guaranteed to be the request's (a client abort fires 'close' from the socket). The store is
 * the same mutable object the tenant guard later binds the scope into, so reading it at that
 * moment sees the tenant even though the guard ran after the middleware.
 */
export const REQUEST_CLS_STORE = Symbol('strata:request-cls-store');

export type WithClsStore = { [REQUEST_CLS_STORE]?: Record<PropertyKey, unknown> };
