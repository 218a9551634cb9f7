import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { IsIn, IsInt, IsISO8601, IsOptional, IsString, Length, Matches, Max, Min, ValidateBy, ValidateIf } from 'class-validator';
import { PageQuery } from '#strata/common';
import { INVOICE_STATUSES, type Invoice, type InvoiceStatus } from './invoice.entity';

/** The statuses an invoice can be created in; paid and void are reached by transitions. */
export const CREATABLE_STATUSES = ['draft', 'open'] as const;

// A strict ISO 8601 instant with its offset: "2026-03-01" alone would mean midnight of which zone?
const INSTANT = { strict: true, strictSeparator: true } as const;
const INSTANT_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const instantMessage = (field: string) => `${field} must be an ISO 8601 date-time with an offset, such as 2026-03-01T00:00:00Z`;

// Postgres text cannot hold NUL; refused here so it is a 400, not a driver error.
const NO_NUL = /^[^\u0000]*$/;

// ISO 4217 as the runtime's ICU knows it; uppercase only, as the table's CHECK requires.
const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

function IsIsoCurrency(): PropertyDecorator {
  return ValidateBy({
    name: 'isIsoCurrency',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && /^[A-Z]{3}$/.test(value) && CURRENCIES.has(value),
      defaultMessage: () => 'currency must be an ISO 4217 code in upper case, such as EUR',
    },
  });
}

export class CreateInvoiceDto {
  @ApiProperty({ minLength: 1, maxLength: 64, pattern: NO_NUL, example: 'INV-2024-0042', description: 'unique per tenant' })
  @IsString() @Length(1, 64) @Matches(NO_NUL, { message: 'number must not contain NUL characters' })
  number: string;

  // No @Type: "100" as a string is refused, not coerced. Above MAX_SAFE_INTEGER a JSON number has
  // already lost precision when it reaches us, so it cannot be stored exactly either.
  @ApiProperty({ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, example: 1250, description: 'in minor units (cents)' })
  @IsInt() @Min(0) @Max(Number.MAX_SAFE_INTEGER)
  amount: number;

  @ApiProperty({ pattern: '^[A-Z]{3}$', example: 'EUR', description: 'an ISO 4217 code in upper case' })
  @IsIsoCurrency()
  currency: string;

  @ApiPropertyOptional({ enum: CREATABLE_STATUSES, default: 'open', description: 'a draft is not yet issued; paid and void are reached by PATCH or /void' })
  @IsOptional() @IsIn(CREATABLE_STATUSES)
  status?: (typeof CREATABLE_STATUSES)[number];

  @ApiPropertyOptional({ type: String, format: 'date-time', example: '2026-03-01T00:00:00Z', description: 'when payment is due; an open invoice past it is overdue' })
  @IsOptional() @IsISO8601(INSTANT, { message: instantMessage('dueAt') }) @Matches(INSTANT_PATTERN, { message: instantMessage('dueAt') })
  dueAt?: string;
}

/**
 * `PATCH /invoices/:id`: any of amount, dueAt (null clears it) and status. Status moves only along
 * draft → open → paid, and to void from draft or open; anything else is 409 invalid_invoice_transition.
 */
export class UpdateInvoiceDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'in minor units (cents)' })
  @IsOptional() @IsInt() @Min(0) @Max(Number.MAX_SAFE_INTEGER)
  amount?: number;

  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true, description: 'null clears the due date' })
  @ValidateIf((_o, v) => v !== undefined && v !== null)
  @IsISO8601(INSTANT, { message: instantMessage('dueAt') }) @Matches(INSTANT_PATTERN, { message: instantMessage('dueAt') })
  dueAt?: string | null;

  @ApiPropertyOptional({ enum: INVOICE_STATUSES })
  @IsOptional() @IsIn(INVOICE_STATUSES)
  status?: InvoiceStatus;
}

/**
 * `GET /invoices`: newest first, optionally one status and a due-date or created-date window
 * (`from` inclusive, `to` exclusive). A cursor is bound to the filters it was issued with.
 */
export class ListInvoicesQuery extends PageQuery {
  @ApiPropertyOptional({ enum: INVOICE_STATUSES })
  @IsOptional() @IsIn(INVOICE_STATUSES)
  status?: InvoiceStatus;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'due at or after this instant (invoices without a due date are left out)' })
  @IsOptional() @IsISO8601(INSTANT, { message: instantMessage('dueFrom') }) @Matches(INSTANT_PATTERN, { message: instantMessage('dueFrom') })
  dueFrom?: string;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'due before this instant' })
  @IsOptional() @IsISO8601(INSTANT, { message: instantMessage('dueTo') }) @Matches(INSTANT_PATTERN, { message: instantMessage('dueTo') })
  dueTo?: string;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'created at or after this instant' })
  @IsOptional() @IsISO8601(INSTANT, { message: instantMessage('createdFrom') }) @Matches(INSTANT_PATTERN, { message: instantMessage('createdFrom') })
  createdFrom?: string;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'created before this instant' })
  @IsOptional() @IsISO8601(INSTANT, { message: instantMessage('createdTo') }) @Matches(INSTANT_PATTERN, { message: instantMessage('createdTo') })
  createdTo?: string;
}

/** The list filters as the repository takes them. */
export interface InvoiceFilter {
  status?: InvoiceStatus;
  dueFrom?: Date;
  dueTo?: Date;
  createdFrom?: Date;
  createdTo?: Date;
}

/** An invoice as the API shows it: the tenant is implied by the request, never echoed. */
@ApiSchema({ name: 'Invoice' })
export class InvoiceView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() number: string;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'in minor units (cents)' }) amount: number;
  @ApiProperty({ pattern: '^[A-Z]{3}$' }) currency: string;
  @ApiProperty({ enum: INVOICE_STATUSES }) status: InvoiceStatus;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) dueAt: Date | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
}

export const toInvoiceView = (i: Invoice): InvoiceView => ({
  id: i.id,
  number: i.number,
  amount: i.amount,
  currency: i.currency,
  status: i.status,
  dueAt: i.dueAt ?? null,
  createdAt: i.createdAt,
});
