import { IsInt, IsString, Length, Matches, Max, Min, ValidateBy } from 'class-validator';
import { PageQuery } from '#strata/common';
import type { Invoice } from './invoice.entity';

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
  @IsString() @Length(1, 64) @Matches(NO_NUL, { message: 'number must not contain NUL characters' })
  number: string;

  // No @Type: "100" as a string is refused, not coerced. Above MAX_SAFE_INTEGER a JSON number has
  // already lost precision when it reaches us, so it cannot be stored exactly either.
  @IsInt() @Min(0) @Max(Number.MAX_SAFE_INTEGER)
  amount: number;

  @IsIsoCurrency()
  currency: string;
}

/** `GET /invoices`: paging only, for now. */
export class ListInvoicesQuery extends PageQuery {}

/** An invoice as the API shows it: the tenant is implied by the request, never echoed. */
export interface InvoiceView {
  id: string;
  number: string;
  amount: number;
  currency: string;
  createdAt: Date;
}

export const toInvoiceView = (i: Invoice): InvoiceView => ({
  id: i.id,
  number: i.number,
  amount: i.amount,
  currency: i.currency,
  createdAt: i.createdAt,
});
