import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import type { Request, Response } from 'express';
import { ClsModule } from 'nestjs-cls';
import { createValidationPipe, HttpErrorFilter, RequestShapeInterceptor, StrataConfigModule, type StrataConfig } from '#strata/common';
import { ControlPlaneModule } from '#strata/control-plane';
import { responseCancellation, TenancyModule } from '#strata/tenancy/platform';
import { MigratorModule } from '#strata/migrator';
import { AuthModule } from '#strata/auth';
import { AdminModule } from '#strata/admin';
import { MovesModule } from '#strata/moves';
import { ExportsModule } from '#strata/exports';
import { AuditModule } from '#strata/audit';
import { OffboardingModule } from '#strata/offboarding';
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
import { PlansModule } from '#strata/plans';
import { RateLimitsModule } from '#strata/rate-limits';
import { CapacityModule } from '#strata/capacity';

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
            // requestIdMiddleware (app.factory.ts) already checked or made the id and set the answer's header.
            idGenerator: (req: Request) => req.headers['x-request-id'] as string,
            setup: (cls, _req: Request, res: Response) => {
              // A client that leaves cancels its request's database work (TenantConnectionManager).
              cls.set('cancellation', responseCancellation(res));
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
        // The audit log's writer (AUDIT_LOG, which auth, admin and moves record through) and its read routes.
        AuditModule,
        AuthModule,
        AdminModule,
        MovesModule,
        HealthModule,
        // Global PlanLimits for the domain modules' quota reservations; /usage, /settings, /admin/plans.
        PlansModule,
        // Per tenant (by plan) and per user at the edge, shared through Redis; the anonymous routes' limits (auth's LOGIN_THROTTLE).
        RateLimitsModule,
        // A tenant's share of this instance by plan: requests in flight, write units' timeouts, job caps.
        CapacityModule,
        ProjectsModule,
        InvoicesModule,
        // FILES_DRIVER (local | s3) and its settings come from the environment, checked at startup.
        StorageModule.forRoot(),
        FilesModule,
        // Tenant exports (admin and owner routes) and their executor; archives go through the storage driver.
        ExportsModule,
        // The API only produces jobs; apps/worker processes them.
        JobsModule.forRoot(),
        // In-process domain events (invoice.created → webhooks outbox), run inside the emitter's transaction.
        EventEmitterModule.forRoot(),
        // OUTBOUND_HTTP_TIMEOUT_MS; WEBHOOK_* settings are read by WebhooksModule, checked at startup.
        HttpClientModule.forRoot(),
        WebhooksModule,
        // Clears every store above (tenancy, cache, storage, jobs) when a tenant is deleted.
        OffboardingModule,
        ...(extra.imports ?? []),
      ],
      controllers: extra.controllers ?? [],
      providers: [
        { provide: APP_FILTER, useClass: HttpErrorFilter },
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_INTERCEPTOR, useClass: RequestShapeInterceptor },
      ],
    };
  }
}
