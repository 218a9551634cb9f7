// Public API of libs/platform/api-docs: the OpenAPI 3.1 document of every route and where it is served.
// Routes document themselves with @nestjs/swagger and #strata/common's ApiErrors/ApiPageResponse.
export { setupApiDocs, OPENAPI_JSON_PATH, SWAGGER_UI_PATH } from './api-docs.setup';
export { buildOpenApiDocument, routeHandlers, operationIdOf, RETRY_AFTER_CODES, type RouteHandler, type ApiDocsOptions } from './openapi.document';
