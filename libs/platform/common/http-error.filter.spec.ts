import type { ArgumentsHost } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { HttpErrorFilter } from './http-error.filter';

/** What the filter wrote: status, headers and JSON body. */
function answer(exception: unknown): { status: number; headers: Record<string, string>; body: Record<string, unknown> } {
  const out = { status: 0, headers: {} as Record<string, string>, body: {} as Record<string, unknown> };
  const res = {
    setHeader: (k: string, v: string) => void (out.headers[k] = v),
    status(code: number) {
      out.status = code;
      return this;
    },
    json: (b: Record<string, unknown>) => void (out.body = b),
  };
  const host = { switchToHttp: () => ({ getResponse: () => res }) } as unknown as ArgumentsHost;
  new HttpErrorFilter().catch(exception, host);
  return out;
}

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('HttpErrorFilter', () => {
  beforeAll(() => jest.spyOn(console, 'error').mockImplementation(() => undefined));

  it('answers 503 unavailable with Retry-After when a database outside a tenant unit (the control plane) cannot be reached', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(answer(refused)).toEqual({
      status: 503,
      headers: { 'Retry-After': '1' },
      body: { statusCode: 503, error: 'unavailable', message: expect.stringMatching(/cannot be reached.*retry/) },
    });
  });

  it('answers 503 for a server shutting down under a query, however TypeORM wrapped it', () => {
    const wrapped = new QueryFailedError('SELECT 1', [], pgError('57P01', 'terminating connection due to administrator command'));
    expect(answer(wrapped).status).toBe(503);
    expect(answer(new Error('Connection terminated unexpectedly')).status).toBe(503);
  });

  it('still answers 500 internal_error, without details, for a bug', () => {
    expect(answer(new TypeError('x is not a function'))).toEqual({
      status: 500,
      headers: {},
      body: { statusCode: 500, error: 'internal_error', message: 'internal error' },
    });
  });
});
