import { Body, Controller, Get, Param, Post, Query } from '@nestjs/common';
import { UuidPipe, type Page } from '#strata/common';
import { CreateInvoiceDto, ListInvoicesQuery, type InvoiceView } from './invoices.dto';
import { InvoicesService } from './invoices.service';

@Controller('invoices')
export class InvoicesController {
  constructor(private readonly invoices: InvoicesService) {}

  @Get()
  list(@Query() query: ListInvoicesQuery): Promise<Page<InvoiceView>> {
    return this.invoices.list(query.limit, query.cursor);
  }

  @Post()
  create(@Body() body: CreateInvoiceDto): Promise<InvoiceView> {
    return this.invoices.create(body);
  }

  @Get(':id')
  get(@Param('id', UuidPipe) id: string): Promise<InvoiceView> {
    return this.invoices.get(id);
  }
}
