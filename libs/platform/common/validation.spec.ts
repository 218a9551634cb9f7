import { Type } from 'class-transformer';
import { IsNotEmpty, IsString, IsUUID, MaxLength, ValidateNested } from 'class-validator';
import { ApiException, type ApiErrorBody } from './api.exception';
import { createValidationPipe } from './validation';

class LineDto {
  @IsString() @IsNotEmpty() @MaxLength(5) name: string;
}
class OrderDto {
  @IsUUID() customerId: string;
  @ValidateNested({ each: true }) @Type(() => LineDto) items: LineDto[];
}
class FilterQuery {
  @IsString() q: string;
}

const pipe = createValidationPipe();

async function refusal(value: unknown, type: 'body' | 'query' = 'body', metatype: new () => object = OrderDto): Promise<ApiErrorBody> {
  try {
    await pipe.transform(value, { type, metatype, data: undefined });
  } catch (err) {
    if (err instanceof ApiException) return err.getResponse() as ApiErrorBody;
    throw err;
  }
  throw new Error('expected the pipe to refuse the value');
}

describe('the validation pipe', () => {
  it('names nested fields as dotted paths, with the first written rule each broke as a snake_case code', async () => {
    const body = await refusal({ customerId: 'nope', items: [{ name: 'ok' }, { name: 123 }], extra: 1 });
    expect(body.error).toBe('validation_failed');
    expect([...body.details!].sort((a, b) => a.field.localeCompare(b.field))).toEqual([
      { field: 'customerId', code: 'is_uuid', message: 'customerId must be a UUID' },
      { field: 'extra', code: 'unknown_field', message: 'property extra should not exist' },
      { field: 'items.1.name', code: 'is_string', message: 'name must be a string' },
    ]);
    expect(body.message).toContain('customerId must be a UUID');
  });

  it.each([[[]], ['text'], [7], [null]])('refuses a body of %p with body_not_object', async (value) => {
    expect((await refusal(value)).error).toBe('body_not_object');
  });

  it('names an unknown query parameter with unknown_query_parameter rather than validation_failed', async () => {
    const body = await refusal({ q: 'x', sort: 'name' }, 'query', FilterQuery);
    expect(body).toEqual({ statusCode: 400, error: 'unknown_query_parameter', message: expect.stringContaining('"sort"') });
  });

  it('caps the fields listed when a body floods unknown keys', async () => {
    const body = await refusal(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i])), 'body', FilterQuery);
    expect(body.details!.length).toBeLessThanOrEqual(20);
    expect(body.message).toMatch(/and \d+ more$/);
  });
});
