import { Body, Controller, Get, Post, Query } from '@nestjs/common';
import { RequireRole } from '#strata/auth';
import { badRequest } from '#strata/common';
import { TenantJobProducer } from '#strata/jobs';
import { TenantConnectionManager } from '#strata/tenancy';
import { INVOICE_OVERDUE_JOB, INVOICE_OVERDUE_QUEUE, type InvoiceOverduePayload } from '../apps/worker/src/invoice-overdue.constants';

/**
 * BENCH ONLY (`npm run bench:neighbours`): what a noisy tenant does besides flooding, behind the
 * real tenant guard (wire tenant, JWT, membership, plan limits) like any tenant route:
 *   - `GET /bench/neighbours/slow?ms=` one statement that runs `ms` in the tenant's unit of work
 *     (a slow report), holding a connection of its home meanwhile;
 *   - `POST /bench/neighbours/jobs {n}` n jobs of the tenant on the worker's invoice-overdue queue
 *     (a bulk import), in chunks of 1,000.
 */
@Controller('bench/neighbours')
export class NeighboursController {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly jobs: TenantJobProducer,
  ) {}

  @Get('slow')
  @RequireRole('member')
  async slow(@Query('ms') ms = '500'): Promise<{ sleptMs: number }> {
    const n = Number(ms);
    if (!Number.isInteger(n) || n < 0 || n > 60_000) throw badRequest('invalid_ms', 'ms must be an integer in [0, 60000]');
    await this.connections.read((m) => m.query('SELECT pg_sleep($1::float8 / 1000)', [n]));
    return { sleptMs: n };
  }

  @Post('jobs')
  @RequireRole('member')
  async enqueue(@Body() body: { n?: number }): Promise<{ enqueued: number }> {
    const n = Number(body?.n ?? 10_000);
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw badRequest('invalid_n', 'n must be an integer in [1, 100000]');
    const asOf = new Date().toISOString();
    for (let i = 0; i < n; i += 1000) {
      const chunk = Array.from({ length: Math.min(1000, n - i) }, () => ({ name: INVOICE_OVERDUE_JOB, payload: { asOf } satisfies InvoiceOverduePayload }));
      await this.jobs.addBulk(INVOICE_OVERDUE_QUEUE, chunk);
    }
    return { enqueued: n };
  }
}
