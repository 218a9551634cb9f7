import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { ModuleMetadata } from '@nestjs/common';
import { answerClientErrorsAsJson, corsOptionsOf, requestIdMiddleware, STRATA_CONFIG, strictJsonReviver, type StrataConfig } from '#strata/common';
import { tenantPathPrefixMiddleware } from '#strata/tenancy/platform';
import { StrataLogger } from '#strata/observability';
import { setupApiDocs } from '#strata/api-docs';
import { AppModule } from './app.module';

export interface CreateAppOptions {
  logger?: false | Array<'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal'>;
  extra?: Pick<ModuleMetadata, 'imports' | 'controllers'>;
}

/** Builds the API exactly as `npm start` runs it; e2e tests and the bench use the same factory. */
export async function createApp(config?: StrataConfig, opts: CreateAppOptions = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, opts.extra), {
    logger: opts.logger ?? ['log', 'error', 'warn', 'fatal'],
    bodyParser: false,
    bufferLogs: true,
  });
  // Nest's own logs through pino, with the tenant fields of the context they are written in.
  app.useLogger(app.get(StrataLogger));
  app.disable('x-powered-by');
  const resolved = app.get<StrataConfig>(STRATA_CONFIG);
  // First: a preflight is answered before any route, guard or tenant resolution sees it.
  const cors = corsOptionsOf(resolved);
  if (cors) app.enableCors(cors);
  // Before anything that can refuse a request (the body parser): every answer carries X-Request-Id.
  app.use(requestIdMiddleware);
  // Before Nest's router: /t/{slug}/projects is served by the /projects route.
  app.use(tenantPathPrefixMiddleware);
  // The reviver refuses lone surrogates and deep nesting before any DTO code runs (400, not 500).
  app.useBodyParser('json', { limit: '256kb', reviver: strictJsonReviver });
  // GET /openapi.json and GET /docs (OPENAPI_ENABLED); public, outside Nest's router and guards.
  setupApiDocs(app, resolved);
  // Requests Node's HTTP parser refuses never reach Express: answer those in the error shape too.
  answerClientErrorsAsJson(app.getHttpServer());
  app.enableShutdownHooks();
  return app;
}
