import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiPageResponse, UuidPipe, type Page } from '#strata/common';
import { Idempotent } from '#strata/idempotency';
import { PlansErrorCode } from '#strata/plans';
import { CreateInvoiceDto, InvoiceView, ListInvoicesQuery, UpdateInvoiceDto } from './invoices.dto';
import { InvoicesErrorCode } from './invoices.errors';
import { InvoicesService } from './invoices.service';
import { RequireRole } from '#strata/auth';

const instant = (v: string | undefined) => (v === undefined ? undefined : new Date(v));

@Controller('invoices')
@ApiTags('invoices')
export class InvoicesController {
  constructor(private readonly invoices: InvoicesService) {}

  @Get()
  @RequireRole('member')
  @ApiPageResponse(InvoiceView, 'one page, newest first; `status`, `dueFrom`/`dueTo` and `createdFrom`/`createdTo` narrow it, and a cursor only continues the list it came from')
  list(@Query() query: ListInvoicesQuery): Promise<Page<InvoiceView>> {
    return this.invoices.list(query.limit, query.cursor, {
      status: query.status,
      dueFrom: instant(query.dueFrom),
      dueTo: instant(query.dueTo),
      createdFrom: instant(query.createdFrom),
      createdTo: instant(query.createdTo),
    });
  }

  @Post()
  @RequireRole('member')
  @Idempotent()
  @ApiCreatedResponse({ type: InvoiceView, description: 'created; emits `invoice.created` to the webhooks' })
  @ApiErrors({ 402: [PlansErrorCode.planLimitReached], 409: [InvoicesErrorCode.invoiceNumberTaken] })
  create(@Body() body: CreateInvoiceDto): Promise<InvoiceView> {
    return this.invoices.create(body);
  }

  @Get(':id')
  @RequireRole('member')
  @ApiOkResponse({ type: InvoiceView })
  @ApiErrors({ 404: [InvoicesErrorCode.invoiceNotFound] })
  get(@Param('id', UuidPipe) id: string): Promise<InvoiceView> {
    return this.invoices.get(id);
  }

  @Patch(':id')
  @RequireRole('member')
  @ApiOkResponse({ type: InvoiceView, description: 'updated; emits `invoice.updated` when anything changed' })
  @ApiErrors({ 404: [InvoicesErrorCode.invoiceNotFound], 409: [InvoicesErrorCode.invalidInvoiceTransition] })
  update(@Param('id', UuidPipe) id: string, @Body() body: UpdateInvoiceDto): Promise<InvoiceView> {
    return this.invoices.update(id, body);
  }

  // Member, as PATCH: a stricter role here would be bypassed by PATCH {status: 'void'}. Voiding keeps the record.
  @Post(':id/void')
  @HttpCode(200)
  @RequireRole('member')
  @ApiOkResponse({ type: InvoiceView, description: 'void (from draft or open; again on a void invoice is a no-op); emits `invoice.updated`' })
  @ApiErrors({ 404: [InvoicesErrorCode.invoiceNotFound], 409: [InvoicesErrorCode.invalidInvoiceTransition] })
  void(@Param('id', UuidPipe) id: string): Promise<InvoiceView> {
    return this.invoices.void(id);
  }
}
