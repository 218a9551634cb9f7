import {
  Controller,
  Get,
  Headers,
  Inject,
  Param,
  Query,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  applyKeysetWindow,
  badRequest,
  keysetWindow,
  notFound,
  STRATA_CONFIG,
  toPage,
  UuidPipe,
  type Page,
  type StrataConfig,
} from '#strata/common';
import { PublicRoute } from '#strata/auth';
import { SHARED_SCHEMA } from '#strata/migrator';
import { Project, type ProjectView } from '#strata/projects';
import { Invoice, ListInvoicesQuery, type InvoiceView } from '#strata/invoices';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * BENCH ONLY — mounted by bench/bench-server.ts through createApp's `extra`, never by `npm start`.
 *
 * The untenanted baseline of the tenant routes: the same queries as ProjectsRepository.findById
 * and InvoicesRepository.list (same entities, same TypeORM calls, so the same SQL, hydration,
 * keyset window, view mapping and JSON), with an explicit `WHERE tenant_id = $1`, and nothing of
 * the tenancy layer: public route (no wire tenant, no JWT,
 * no membership), no CLS tenant, no transaction. A plain DataSource connected as the owner
 * (a superuser: RLS is bypassed, which the design notes measured as free) with search_path set to
 * the pool's shared schema at connect time, and the same pool size as the app's data pool.
 * The tenant id comes from the `x-bench-tenant-id` header.
 */
@Controller('bench/baseline')
@PublicRoute()
export class BaselineController implements OnModuleInit, OnApplicationShutdown {
  private ds!: DataSource;

  constructor(@Inject(STRATA_CONFIG) private readonly config: StrataConfig) {}

  async onModuleInit(): Promise<void> {
    this.ds = await new DataSource({
      type: 'postgres',
      url: this.config.databaseUrl,
      entities: [Project, Invoice],
      synchronize: false,
      installExtensions: false,
      applicationName: 'strata-bench-baseline',
      extra: {
        max: this.config.dataPoolMax,
        // Same driver mode as the tenant DataSources; with one statement per request it changes nothing.
        pipeline: true,
        options: `-c search_path=${SHARED_SCHEMA}`,
      },
    }).initialize();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.ds?.isInitialized) await this.ds.destroy();
  }

  /** ProjectsController.get → ProjectsService.get → ProjectsRepository.findById, minus tenancy. */
  @Get('projects/:id')
  async project(@Headers('x-bench-tenant-id') tenantHeader: string | undefined, @Param('id', UuidPipe) id: string): Promise<ProjectView> {
    const tenantId = tenantOf(tenantHeader);
    const project = await this.ds.manager.findOneBy(Project, { tenantId, id });
    if (!project) throw notFound('project_not_found', 'project not found');
    return { id: project.id, name: project.name, description: project.description, createdAt: project.createdAt, updatedAt: project.updatedAt };
  }

  /** InvoicesController.list → InvoicesService.list → InvoicesRepository.list, minus tenancy. */
  @Get('invoices')
  async invoices(@Headers('x-bench-tenant-id') tenantHeader: string | undefined, @Query() query: ListInvoicesQuery): Promise<Page<InvoiceView>> {
    const tenantId = tenantOf(tenantHeader);
    const window = keysetWindow({ limit: query.limit, cursor: query.cursor });
    const q = this.ds.manager.createQueryBuilder(Invoice, 'invoice').where('invoice.tenantId = :tenantId', { tenantId });
    const rows = await applyKeysetWindow(q, 'invoice', window).getMany();
    return toPage(rows, query.limit, (i): InvoiceView => ({
      id: i.id,
      number: i.number,
      amount: i.amount,
      currency: i.currency,
      createdAt: i.createdAt,
    }));
  }
}

function tenantOf(header: string | undefined): string {
  if (!header || !UUID.test(header)) throw badRequest('bench_tenant_required', 'x-bench-tenant-id must be a tenant UUID');
  return header;
}
