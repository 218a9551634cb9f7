import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { ApiException } from './api.exception';
import { decodeCursor, encodeCursor, filterScope, keysetWindow, PageQuery, toPage, type KeysetPosition } from './keyset-cursor';

const id = '3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60';
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ApiException ? `${err.getStatus()} ${err.code}` : String(err);
  }
  return undefined;
}

// Same options as the app's global ValidationPipe.
async function pageQuery(plain: Record<string, unknown>) {
  const query = plainToInstance(PageQuery, plain);
  const errors = await validate(query, { whitelist: true, forbidNonWhitelisted: true });
  return { query, failed: errors.map((e) => e.property) };
}

describe('keyset cursor', () => {
  it('decodes what it encodes, to the millisecond', () => {
    const position = { createdAt: new Date('2026-03-04T05:06:07.089Z'), id };
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual(position);
  });

  it('rejects a cursor that is not base64url JSON', () => {
    expect(codeOf(() => decodeCursor('%%%garbage'))).toBe('400 invalid_cursor');
    expect(codeOf(() => decodeCursor(b64('not json')))).toBe('400 invalid_cursor');
    expect(codeOf(() => decodeCursor(''))).toBe('400 invalid_cursor');
  });

  it('rejects JSON that is not a [timestamp, uuid] pair', () => {
    for (const value of [{}, [], ['2026-03-04T05:06:07.089Z'], [1, id], ['2026-03-04T05:06:07.089Z', 'nope'], ['2026-03-04T05:06:07.089Z', id, 3]]) {
      expect(codeOf(() => decodeCursor(b64(JSON.stringify(value))))).toBe('400 invalid_cursor');
    }
  });

  it('rejects a timestamp that is not in the exact form it issues', () => {
    for (const ts of ['2026-03-04', '2026-03-04T05:06:07Z', '2026-03-04T06:06:07.089+01:00', 'yesterday', '2026-02-30T00:00:00.000Z']) {
      expect(codeOf(() => decodeCursor(b64(JSON.stringify([ts, id]))))).toBe('400 invalid_cursor');
    }
  });

  it('rejects a cursor far longer than any it issues', () => {
    expect(codeOf(() => decodeCursor('A'.repeat(10_000)))).toBe('400 invalid_cursor');
  });
});

describe('keyset window and page', () => {
  const rows: KeysetPosition[] = [3, 2, 1].map((n) => ({ createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)), id }));

  it('fetches one row more than the limit and starts after the cursor', () => {
    const cursor = encodeCursor(rows[0]);
    expect(keysetWindow({ limit: 2, cursor })).toEqual({ after: rows[0], take: 3 });
    expect(keysetWindow({ limit: 20 })).toEqual({ after: null, take: 21 });
  });

  it('refuses a limit outside 1..100 from a caller that skipped validation', () => {
    expect(() => keysetWindow({ limit: 0 })).toThrow(RangeError);
    expect(() => keysetWindow({ limit: 101 })).toThrow(RangeError);
  });

  it('points nextCursor at the last item shown when another row exists', () => {
    const page = toPage(rows, 2, (r) => r.createdAt.toISOString());
    expect(page.items).toEqual(['2026-01-01T00:00:03.000Z', '2026-01-01T00:00:02.000Z']);
    expect(decodeCursor(page.nextCursor!)).toEqual(rows[1]);
  });

  it('answers nextCursor null on the last page', () => {
    expect(toPage(rows, 3, (r) => r).nextCursor).toBeNull();
    expect(toPage([], 20, (r) => r)).toEqual({ items: [], nextCursor: null });
  });
});

describe('page query', () => {
  it('defaults the limit to 20', async () => {
    expect(await pageQuery({})).toEqual({ query: expect.objectContaining({ limit: 20 }), failed: [] });
  });

  it('turns a numeric query string into a number', async () => {
    const { query, failed } = await pageQuery({ limit: '100', cursor: 'abc' });
    expect(failed).toEqual([]);
    expect(query.limit).toBe(100);
    expect(query.cursor).toBe('abc');
  });

  it.each(['0', '101', '1.5', 'ten', '', '-1'])('rejects limit=%j', async (limit) => {
    expect((await pageQuery({ limit })).failed).toEqual(['limit']);
  });

  it('rejects a repeated cursor parameter', async () => {
    expect((await pageQuery({ cursor: ['a', 'b'] })).failed).toEqual(['cursor']);
  });

  it('rejects unknown query parameters', async () => {
    expect((await pageQuery({ offset: '10' })).failed).toEqual(['offset']);
  });
});

describe('cursors bound to the filters of their list', () => {
  const position = { createdAt: new Date('2026-01-02T03:04:05.678Z'), id: '00000000-0000-4000-8000-000000000001' };

  it('round-trips a cursor issued for a filter when the same filter comes back', () => {
    const scope = filterScope({ status: 'open' });
    expect(decodeCursor(encodeCursor(position, scope), scope)).toEqual(position);
  });

  it('refuses a cursor issued for another filter, or for no filter, with invalid_cursor', () => {
    const open = encodeCursor(position, filterScope({ status: 'open' }));
    expect(() => decodeCursor(open, filterScope({ status: 'paid' }))).toThrow(expect.objectContaining({ code: 'invalid_cursor' }));
    expect(() => decodeCursor(open)).toThrow(expect.objectContaining({ code: 'invalid_cursor' }));
    expect(() => decodeCursor(encodeCursor(position), filterScope({ status: 'open' }))).toThrow(expect.objectContaining({ code: 'invalid_cursor' }));
  });

  it('treats absent filters as no filter, whatever the order the filters are named in', () => {
    expect(filterScope({ status: undefined })).toBeUndefined();
    expect(filterScope({ a: 'x', b: 'y' })).toBe(filterScope({ b: 'y', a: 'x' }));
  });
});
