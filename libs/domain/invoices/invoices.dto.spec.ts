import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { CreateInvoiceDto, ListInvoicesQuery } from './invoices.dto';

// Same options as the app's global ValidationPipe.
async function failedFields<T extends object>(type: new () => T, plain: Record<string, unknown>): Promise<string[]> {
  const errors = await validate(plainToInstance(type, plain), { whitelist: true, forbidNonWhitelisted: true });
  return errors.map((e) => e.property).sort();
}

const valid = { number: 'INV-1', amount: 1999, currency: 'EUR' };

describe('invoice body', () => {
  it('accepts a number, an amount in minor units and an ISO 4217 currency', async () => {
    expect(await failedFields(CreateInvoiceDto, valid)).toEqual([]);
    expect(await failedFields(CreateInvoiceDto, { ...valid, amount: 0, currency: 'JPY' })).toEqual([]);
    expect(await failedFields(CreateInvoiceDto, { ...valid, amount: Number.MAX_SAFE_INTEGER })).toEqual([]);
  });

  it.each([10.5, -1, '100', Number.MAX_SAFE_INTEGER + 2, null, Number.NaN, Number.POSITIVE_INFINITY])(
    'rejects amount %p',
    async (amount) => {
      expect(await failedFields(CreateInvoiceDto, { ...valid, amount })).toEqual(['amount']);
    },
  );

  it.each(['XXQ', 'eur', 'EURO', '', 42])('rejects currency %p', async (currency) => {
    expect(await failedFields(CreateInvoiceDto, { ...valid, currency })).toEqual(['currency']);
  });

  it.each(['', 'x'.repeat(65), 7, 'A\u0000B'])('rejects invoice number %p', async (number) => {
    expect(await failedFields(CreateInvoiceDto, { ...valid, number })).toEqual(['number']);
  });

  it('refuses fields the API does not define', async () => {
    expect(await failedFields(CreateInvoiceDto, { ...valid, tenantId: 'x' })).toEqual(['tenantId']);
  });
});

describe('invoice list query', () => {
  it('takes a limit of 1..100 and nothing else', async () => {
    expect(await failedFields(ListInvoicesQuery, { limit: '1' })).toEqual([]);
    expect(await failedFields(ListInvoicesQuery, { limit: '0' })).toEqual(['limit']);
    expect(await failedFields(ListInvoicesQuery, { sort: 'amount' })).toEqual(['sort']);
  });
});
