import { Module } from '@nestjs/common';
import { TenancyModule } from '#strata/tenancy';
import { IdempotencyModule } from '#strata/idempotency';
import { Invoice } from './invoice.entity';
import { InvoicesController } from './invoices.controller';
import { InvoicesRepository } from './invoices.repository';
import { InvoicesService } from './invoices.service';

@Module({
  imports: [TenancyModule.forFeature([Invoice]), IdempotencyModule],
  controllers: [InvoicesController],
  providers: [InvoicesRepository, InvoicesService],
  exports: [InvoicesService],
})
export class InvoicesModule {}
