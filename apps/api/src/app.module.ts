import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { ClsModule } from 'nestjs-cls';
import { createValidationPipe, HttpErrorFilter, StrataConfigModule, type StrataConfig } from '#strata/common';
import { ControlPlaneModule } from '#strata/control-plane';
import { TenancyModule } from '#strata/tenancy/platform';
import { MigratorModule } from '#strata/migrator';
import { AuthModule } from '#strata/auth';
import { AdminModule } from '#strata/admin';
import { MovesModule } from '#strata/moves';
import { HealthModule } from '#strata/health';
import { ProjectsModule } from '#strata/projects';
import { InvoicesModule } from '#strata/invoices';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { HttpClientModule } from '#strata/http-client';
import { WebhooksModule } from '#strata/webhooks';
import { StorageModule } from '#strata/storage';
import { FilesModule } from '#strata/files';
import { ObservabilityModule } from '#strata/observability';
import { JobsModule } from '#strata/jobs';
import { CacheModule, RegistryInvalidationModule } from '#strata/cache';

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

@Module({})
export class AppModule {
  /** The whole API; `extra` lets the bench mount its baseline route without touching the app. */
  static forRoot(config?: StrataConfig, extra: Pick<ModuleMetadata, 'imports' | 'controllers'> = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        StrataConfigModule.forRoot(config),
        ClsModule.forRoot({
          global: true,
          // The middleware enters each request's context with run(), never enterWith().
          middleware: {
            mount: true,
            generateId: true,
            idGenerator: (req: Request) => {
              const given = req.headers['x-request-id'];
              return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
            },
            setup: (cls, _req: Request, res: Response) => {
              res.setHeader('X-Request-Id', cls.getId());
            },
          },
        }),
        // After ClsModule: its middleware needs the request's context to exist.
        ObservabilityModule.forRoot(),
        ControlPlaneModule,
        MigratorModule,
        TenancyModule,
        CacheModule.forRoot(),
        RegistryInvalidationModule.forRoot(),
        AuthModule,
        AdminModule,
        MovesModule,
        HealthModule,
        ProjectsModule,
        InvoicesModule,
        // FILES_DRIVER (local | s3) and its settings come from the environment, checked at startup.
        StorageModule.forRoot(),
        FilesModule,
        // The API only produces jobs; apps/worker processes them.
        JobsModule.forRoot(),
        // In-process domain events (invoice.created → webhooks outbox), run inside the emitter's transaction.
        EventEmitterModule.forRoot(),
        // OUTBOUND_HTTP_TIMEOUT_MS; WEBHOOK_* settings are read by WebhooksModule, checked at startup.
        HttpClientModule.forRoot(),
        WebhooksModule,
        ...(extra.imports ?? []),
      ],
      controllers: extra.controllers ?? [],
      providers: [
        { provide: APP_FILTER, useClass: HttpErrorFilter },
        { provide: APP_PIPE, useFactory: createValidationPipe },
      ],
    };
  }
}
