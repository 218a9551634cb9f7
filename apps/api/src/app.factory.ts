import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { ModuleMetadata } from '@nestjs/common';
import { strictJsonReviver, type StrataConfig } from '#strata/common';
import { tenantPathPrefixMiddleware } from '#strata/tenancy/platform';
import { StrataLogger } from '#strata/observability';
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
  // Before Nest's router: /t/{slug}/projects is served by the /projects route.
  app.use(tenantPathPrefixMiddleware);
  // The reviver refuses lone surrogates and deep nesting before any DTO code runs (400, not 500).
  app.useBodyParser('json', { limit: '256kb', reviver: strictJsonReviver });
  app.enableShutdownHooks();
  return app;
}
