import { RegistryInvalidationModule } from '#strata/cache';
import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { ClsModule } from 'nestjs-cls';
import { StrataConfigModule, type StrataConfig } from '#strata/common';
import { ControlPlaneModule } from '#strata/control-plane';
import { TenancyModule } from '#strata/tenancy/platform';
import { MigratorModule } from '#strata/migrator';
import { InvoicesModule } from '#strata/invoices';
import { MovesRunnerModule } from '#strata/moves';
import { JobsModule, type JobsModuleOptions } from '#strata/jobs';
import { ObservabilityModule } from '#strata/observability';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { HttpClientModule } from '#strata/http-client';
import { WEBHOOK_DELIVERY_QUEUE, WEBHOOK_RELAY_QUEUE, WebhookDeliveryProcessor, WebhookRelayProcessor, WebhooksModule } from '#strata/webhooks';
import { INVOICE_OVERDUE_QUEUE } from './invoice-overdue.constants';
import { InvoiceOverdueProcessor } from './invoice-overdue.processor';
import { InvoiceOverdueSweep } from './invoice-overdue.sweep';
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
        InvoicesModule,
        // The worker claims tenant moves too (whichever process claims one runs it).
        MovesRunnerModule,
        JobsModule.forRoot(opts.jobs),
        JobsModule.registerQueue(INVOICE_OVERDUE_QUEUE),
        // Invoices created by jobs emit webhooks too; deliveries go out through the tenant HTTP client.
        EventEmitterModule.forRoot(),
        HttpClientModule.forRoot(),
        WebhooksModule,
        JobsModule.registerQueue(WEBHOOK_DELIVERY_QUEUE),
        // The outbox relay: its cron (WebhookRelaySweep) fans out one job per tenant to this queue.
        JobsModule.registerQueue(WEBHOOK_RELAY_QUEUE),
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
        ...(opts.extra?.providers ?? []),
      ],
    };
  }
}
