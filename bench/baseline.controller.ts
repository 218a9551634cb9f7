import { randomUUID } from 'node:crypto';
import {
  Body,
  Controller,
  Get,
  Headers,
  Inject,
  Param,
  Post,
  Query,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { DataSource, QueryFailedError } from 'typeorm';
import {
  applyKeysetWindow,
  badRequest,
  conflict,
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
// Not in those libs' public APIs; the bench is outside the lib boundary rules (npm run lint:deps checks apps and libs).
import { CreateInvoiceDto, toInvoiceView } from '../libs/domain/invoices/invoices.dto';
import { WebhookEndpoint } from '../libs/domain/webhooks/webhook-endpoint.entity';
import { takeStatement } from '../libs/platform/plans/usage.counters';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** libs/domain/invoices' INVOICE_CREATED (not exported from its index). */
const INVOICE_CREATED = 'invoice.created';
const UNIQUE_VIOLATION = '23505';

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
 *
 * The write (`POST invoices`) is the untenanted twin of InvoicesService.create — see its comment.
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
      entities: [Project, Invoice, WebhookEndpoint],
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
      status: i.status,
      dueAt: i.dueAt,
      createdAt: i.createdAt,
    }));
  }

  /**
   * InvoicesController.create → InvoicesService.create, minus tenancy. Same body DTO (so the same
   * global ValidationPipe work), then one plain TypeORM transaction on the owner DataSource:
   *
   *   START TRANSACTION                                   (its own round trip, awaited)
   *   INSERT INTO invoices … RETURNING id, created_at      (InvoicesRepository.insert: same create() + insert(), tenant_id explicit)
   *   INSERT INTO webhook_deliveries … SELECT … + SELECT usage_take(…) + COMMIT
   *        (the outbox's deliveries and PlanLimits' reservation, pipelined with the COMMIT in one
   *         write as commitWith sends them; no limit, the bench's plan is enterprise)
   *
   * then the same InvoiceView, and a unique violation mapped to 409 invoice_number_taken.
   *
   * Not included: the tenancy layer (guard, CLS tenant, the tenant setup statement, RLS as the app
   * role, and — with PLACEMENT_FENCE — the placement fence), the EventEmitter2 dispatch of
   * `invoice.created` (the listener needs a tenant unit of work, so the baseline runs the outbox's
   * query itself instead of emitting), and delivery rows plus their after-commit enqueue: the bench's
   * tenants have no webhook endpoints, so on the tenant route the outbox's work is that one SELECT
   * returning nothing, and this route refuses (500) to run if the SELECT finds an endpoint rather
   * than silently doing less than the tenant route. One protocol difference, in the tenant route's
   * favour: TenantConnectionManager.transaction pipelines BEGIN and the tenant setup with the first
   * statement (one round trip), while TypeORM's transaction awaits START TRANSACTION first, so the
   * baseline makes 4 sequential round trips where the tenant route makes 3 (both send the take
   * and the COMMIT together).
   */
  @Post('invoices')
  async createInvoice(@Headers('x-bench-tenant-id') tenantHeader: string | undefined, @Body() body: CreateInvoiceDto): Promise<InvoiceView> {
    const tenantId = tenantOf(tenantHeader);
    try {
      const qr = this.ds.createQueryRunner('master');
      let invoice: Invoice;
      try {
        await qr.startTransaction();
        const manager = qr.manager;
        const created = manager.create(Invoice, { number: body.number, amount: body.amount, currency: body.currency, tenantId });
        // INSERT … RETURNING fills id and createdAt into `created`.
        await manager.insert(Invoice, created);
        // The outbox's INSERT … SELECT of deliveries for subscribed endpoints and PlanLimits' take,
        // pipelined with the COMMIT in one write, as TenantConnectionManager.commitWith sends them.
        const client = (await qr.connect()) as PipelinedClient;
        const take = takeStatement(tenantId, `invoices:${new Date().toISOString().slice(0, 7)}`, 1, null);
        client.connection?.stream?.cork?.();
        const outbox = client.query(OUTBOX_SQL, [tenantId, randomUUID(), INVOICE_CREATED, JSON.stringify(toInvoiceView(created))]) as Promise<{ rows: unknown[] }>;
        const taken = client.query(take.sql, take.params);
        const commit = client.query('COMMIT');
        client.connection?.stream?.uncork?.();
        const [made] = await Promise.all([outbox, taken, commit]);
        if (made.rows.length > 0) {
          throw new Error('bench baseline: the tenant has webhook endpoints; this route does not enqueue their deliveries, so it would not match POST /invoices');
        }
        // Committed behind TypeORM's back: tell it, so release() does not think a transaction is open.
        (qr as unknown as { isTransactionActive: boolean }).isTransactionActive = false;
        invoice = created;
      } catch (err) {
        if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
        throw err;
      } finally {
        await qr.release();
      }
      return toInvoiceView(invoice);
    } catch (err) {
      if (err instanceof QueryFailedError && (err.driverError as { code?: string } | undefined)?.code === UNIQUE_VIOLATION) {
        throw conflict('invoice_number_taken', 'an invoice with this number already exists');
      }
      throw err;
    }
  }
}

/** WebhookDeliveriesRepository.pendingForSubscribers' statement. */
const OUTBOX_SQL = `INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, payload)
  SELECT e.tenant_id, e.id, $2::uuid, $3, $4::jsonb FROM webhook_endpoints e
   WHERE e.tenant_id = $1::uuid AND $3 = ANY(e.events) AND e.enabled AND e.deleted_at IS NULL
  RETURNING id, event_type`;

/** The pg client under a QueryRunner: its socket, to send two pipelined statements in one write. */
interface PipelinedClient {
  query(sql: string, params?: unknown[]): Promise<unknown>;
  connection?: { stream?: { cork?(): void; uncork?(): void } };
}

function tenantOf(header: string | undefined): string {
  if (!header || !UUID.test(header)) throw badRequest('bench_tenant_required', 'x-bench-tenant-id must be a tenant UUID');
  return header;
}
