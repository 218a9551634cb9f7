import type { INestApplication } from '@nestjs/common';
import { SwaggerModule } from '@nestjs/swagger';
import type { StrataConfig } from '#strata/common';
import { buildOpenApiDocument, type ApiDocsOptions } from './openapi.document';

export const OPENAPI_JSON_PATH = '/openapi.json';
export const SWAGGER_UI_PATH = '/docs';

/**
 * `GET /openapi.json` and `GET /docs` (Swagger UI) when OPENAPI_ENABLED. Both are served by
 * @nestjs/swagger straight on the HTTP adapter, outside Nest's router: no guard, interceptor or
 * tenant resolution runs for them, so they are public by construction (and invisible to the
 * route-access test, which enumerates Nest controllers). The document is built on first request,
 * once every module is initialised, and kept.
 */
export function setupApiDocs(app: INestApplication, config: Pick<StrataConfig, 'openapiEnabled' | 'baseDomain'>, options: ApiDocsOptions = {}): boolean {
  if (!config.openapiEnabled) return false;
  SwaggerModule.setup(SWAGGER_UI_PATH.slice(1), app, () => buildOpenApiDocument(app, config, options), {
    jsonDocumentUrl: OPENAPI_JSON_PATH.slice(1),
    raw: ['json'],
    customSiteTitle: 'Strata API',
    swaggerOptions: { persistAuthorization: true, displayRequestDuration: true },
  });
  return true;
}
