import { RegistryInvalidationModule } from '#strata/cache';
import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { ClsModule } from 'nestjs-cls';
import { StrataConfigModule, type StrataConfig } from '#strata/common';
import { ControlPlaneModule } from '#strata/control-plane';
import { TenancyModule } from '#strata/tenancy/platform';
import { MigratorModule } from '#strata/migrator';
import { InvoicesModule } from '#strata/invoices';
import { PlanLimitsModule } from '#strata/plans';
import { CapacityModule } from '#strata/capacity';
import { MovesRunnerModule } from '#strata/moves';
import { ExportsRunnerModule } from '#strata/exports';
import { StorageModule } from '#strata/storage';
import { OnboardingRunnerModule } from '#strata/onboarding';
import { JobsModule, type JobsModuleOptions } from '#strata/jobs';
import { ObservabilityModule } from '#strata/observability';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { HttpClientModule } from '#strata/http-client';
import { IDEMPOTENCY_KEY_SWEEP_QUEUE, IdempotencyKeySweepProcessor, IdempotencyModule } from '#strata/idempotency';
import { WEBHOOK_DELIVERY_QUEUE, WEBHOOK_RELAY_QUEUE, WebhookDeliveryProcessor, WebhookRelayProcessor, WebhooksModule } from '#strata/webhooks';
import { INVOICE_OVERDUE_QUEUE } from './invoice-overdue.constants';
import { InvoiceOverdueProcessor } from './invoice-overdue.processor';
import { InvoiceOverdueSweep } from './invoice-overdue.sweep';
import { IdempotencyKeySweep } from './idempotency-key.sweep';
import { TenantFanOut } from './tenant-fan-out';
import { WebhookRelaySweep } from './webhook-relay.sweep';

export interface WorkerModuleOptions {
  jobs?: JobsModuleOptions;
  /** Register the @Cron schedules (off in tests, which call the sweep directly). Default true. */
  schedule?: boolean;
  extra?: Pick<ModuleMetadata, 'imports' | 'providers'>;
}

/**
 * The worker process: the same libs as the API (config, CLS, control plane, tenancy, domain
 * modules) without HTTP, plus the processors and the cron schedules. CLS has no middleware here:
 * TenantWorkerHost enters a context per job with TenantContext.run().
 */
@Module({})
export class WorkerModule {
  static forRoot(config?: StrataConfig, opts: WorkerModuleOptions = {}): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        StrataConfigModule.forRoot(config),
        ClsModule.forRoot({ global: true }),
        // pino with the tenant fields of the job or cron context each line is written in (main.ts
        // installs it as Nest's logger); its HTTP parts (middleware, /metrics) stay idle here.
        ObservabilityModule.forRoot(),
        ControlPlaneModule,
        MigratorModule,
        TenancyModule,
        // Every process holding a registry listens for admin changes.
        RegistryInvalidationModule.forRoot(),
        // Invoices created by jobs count against the tenant's plan like the API's.
        PlanLimitsModule,
        // Jobs' per-tenant caps and write units' timeouts by plan (the HTTP interceptor idles here).
        CapacityModule,
        InvoicesModule,
        // The worker claims tenant moves too (whichever process claims one runs it).
        MovesRunnerModule,
        // …and tenant exports, whose archives go through the storage driver FILES_DRIVER names.
        StorageModule.forRoot(),
        ExportsRunnerModule,
        // … and onboardings, the same way.
        OnboardingRunnerModule,
        JobsModule.forRoot(opts.jobs),
        JobsModule.registerQueue(INVOICE_OVERDUE_QUEUE),
        // Invoices created by jobs emit webhooks too; deliveries go out through the tenant HTTP client.
        EventEmitterModule.forRoot(),
        HttpClientModule.forRoot(),
        WebhooksModule,
        JobsModule.registerQueue(WEBHOOK_DELIVERY_QUEUE),
        // The outbox relay: its cron (WebhookRelaySweep) fans out one job per tenant to this queue.
        JobsModule.registerQueue(WEBHOOK_RELAY_QUEUE),
        // Expired idempotency keys: its cron (IdempotencyKeySweep) fans out one sweep per tenant to this queue.
        IdempotencyModule,
        JobsModule.registerQueue(IDEMPOTENCY_KEY_SWEEP_QUEUE),
        ...(opts.schedule === false ? [] : [ScheduleModule.forRoot()]),
        ...(opts.extra?.imports ?? []),
      ],
      providers: [
        TenantFanOut,
        InvoiceOverdueProcessor,
        InvoiceOverdueSweep,
        WebhookDeliveryProcessor,
        WebhookRelayProcessor,
        WebhookRelaySweep,
        IdempotencyKeySweepProcessor,
        IdempotencyKeySweep,
        ...(opts.extra?.providers ?? []),
      ],
    };
  }
}
