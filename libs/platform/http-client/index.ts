// Public API of libs/platform/http-client: tenant-aware outbound HTTP (tenant + request headers, trace context, timeouts).
export { HttpClientModule } from './http-client.module';
export { TenantHttpClient, type TenantRequestInit } from './tenant-http.client';
export { OutboundTimeoutError, OutboundRequestError, originOf } from './outbound.errors';
export { HTTP_CLIENT_OPTIONS, DEFAULT_OUTBOUND_TIMEOUT_MS, type HttpClientOptions, type ResolvedHttpClientOptions } from './http-client.options';
