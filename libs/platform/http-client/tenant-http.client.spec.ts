import { Global, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { propagation } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { ClsModule } from 'nestjs-cls';
import { MissingTenantContextError, TenantContext, type TenantPlacement, SYSTEM_TENANT } from '#strata/tenancy/platform';
import { HttpClientModule } from './http-client.module';
import { resolveHttpClientOptions } from './http-client.options';
import { OutboundRequestError, OutboundTimeoutError } from './outbound.errors';
import { TenantHttpClient } from './tenant-http.client';

const tenant = (id: string): TenantPlacement => ({
  id,
  slug: `t-${id.slice(0, 4)}`,
  tier: 'pool',
  poolId: 'main-pool',
  schemaName: 'shared',
  databaseName: null,
  status: 'active',
  schemaVersion: '0001', placementEpoch: 1
});
// TenancyModule is global in the apps; here only its context, without databases.
@Global()
@Module({ providers: [TenantContext], exports: [TenantContext] })
class TenantContextOnly {}

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';

describe('TenantHttpClient', () => {
  let ctx: TenantContext;
  let client: TenantHttpClient;
  let fetchMock: jest.SpiedFunction<typeof fetch>;

  beforeAll(async () => {
    const mod = await Test.createTestingModule({
      imports: [ClsModule.forRoot({ global: true }), TenantContextOnly, HttpClientModule.forRoot({ timeoutMs: 1000, userAgent: 'strata/test' })],
    }).compile();
    ctx = mod.get(TenantContext);
    client = mod.get(TenantHttpClient);
  });
  beforeEach(() => {
    fetchMock = jest.spyOn(globalThis, 'fetch').mockImplementation(async () => new Response('ok'));
  });
  afterEach(() => fetchMock.mockRestore());

  const sent = (call = 0): { url: string; headers: Headers; init: RequestInit } => {
    const [url, init] = fetchMock.mock.calls[call] as [string, RequestInit];
    return { url, headers: init.headers as Headers, init };
  };

  it('sends the tenant id, the request id and its user agent from the current context', async () => {
    await ctx.run({ tenant: tenant(A), requestId: 'req-aaaa-1111' }, () => client.fetch('http://receiver.test/hook'));
    const { headers } = sent();
    expect(headers.get('x-tenant-id')).toBe(A);
    expect(headers.get('x-request-id')).toBe('req-aaaa-1111');
    expect(headers.get('user-agent')).toBe('strata/test');
  });

  it('keeps the caller headers but never lets them override the tenant headers, in any letter case', async () => {
    await ctx.run({ tenant: tenant(A), requestId: 'req-aaaa-2222' }, () =>
      client.fetch('http://receiver.test/hook', {
        method: 'POST',
        headers: { 'X-TENANT-ID': B, 'x-request-id': 'forged', 'Content-Type': 'application/json', 'X-Custom': 'kept' },
        body: '{}',
      }),
    );
    const { headers, init } = sent();
    expect(headers.get('x-tenant-id')).toBe(A);
    expect(headers.get('x-request-id')).toBe('req-aaaa-2222');
    expect(headers.get('content-type')).toBe('application/json');
    expect(headers.get('x-custom')).toBe('kept');
    expect(init.method).toBe('POST');
  });

  it('sends the system tenant its own id too', async () => {
    await ctx.run({ tenant: SYSTEM_TENANT, system: true, requestId: 'sweep-12345678' }, () => client.fetch('http://receiver.test/'));
    expect(sent().headers.get('x-tenant-id')).toBe('00000000-0000-0000-0000-000000000000');
  });

  it('refuses to call out without a tenant context, before fetch is reached', async () => {
    await expect(client.fetch('http://receiver.test/')).rejects.toThrow(MissingTenantContextError);
    await expect(client.fetch('http://receiver.test/')).rejects.toThrow(/an outbound HTTP call/);
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('carries W3C baggage (with the tenant) once tracing installs a propagator', async () => {
    propagation.setGlobalPropagator(new W3CBaggagePropagator());
    try {
      await ctx.run({ tenant: tenant(B) }, () => client.fetch('http://receiver.test/', { headers: { baggage: 'forged=1' } }));
    } finally {
      propagation.disable();
    }
    expect(sent().headers.get('baggage')).toBe(`tenant.id=${B}`);
  });

  it('gives every call a deadline: the module default, or the one the call names', async () => {
    await ctx.run({ tenant: tenant(A) }, async () => {
      await client.fetch('http://receiver.test/');
      await client.fetch('http://receiver.test/', { timeoutMs: 50 });
    });
    expect(sent(0).init.signal).toBeInstanceOf(AbortSignal);
    expect(sent(1).init.signal).toBeInstanceOf(AbortSignal);
    await expect(ctx.run({ tenant: tenant(A) }, () => client.fetch('http://receiver.test/', { timeoutMs: 0 }))).rejects.toThrow(/timeoutMs must be an integer/);
  });

  it('turns an expired deadline into OutboundTimeoutError naming the origin only', async () => {
    fetchMock.mockImplementation((_url, init) => new Promise((_resolve, reject) => init!.signal!.addEventListener('abort', () => reject(init!.signal!.reason))));
    const err = await ctx.run({ tenant: tenant(A) }, () => client.fetch('https://receiver.test/hooks/s3cr3t-token?x=1', { timeoutMs: 20 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutboundTimeoutError);
    expect((err as Error).message).toBe('outbound GET to https://receiver.test timed out after 20 ms');
  });

  it('turns a network failure into OutboundRequestError with its cause', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    fetchMock.mockRejectedValue(new TypeError('fetch failed', { cause: refused }));
    const err = await ctx.run({ tenant: tenant(A) }, () => client.fetch('http://127.0.0.1:9/x', { method: 'post' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutboundRequestError);
    expect((err as Error).message).toBe('outbound POST to http://127.0.0.1:9 failed: connect ECONNREFUSED 127.0.0.1:9');
    expect((err as Error).cause).toBeInstanceOf(TypeError);
  });

  it("rethrows the caller's own abort unchanged", async () => {
    const abort = new AbortController();
    fetchMock.mockImplementation((_url, init) => new Promise((_resolve, reject) => init!.signal!.addEventListener('abort', () => reject(init!.signal!.reason))));
    const pending = ctx.run({ tenant: tenant(A) }, () => client.fetch('http://receiver.test/', { signal: abort.signal }));
    abort.abort(new Error('shutting down'));
    await expect(pending).rejects.toThrow('shutting down');
  });
});

describe('http client options', () => {
  it('reads OUTBOUND_HTTP_TIMEOUT_MS when no option is given, and defaults to 5000', () => {
    expect(resolveHttpClientOptions({}, {}).timeoutMs).toBe(5000);
    expect(resolveHttpClientOptions({}, { OUTBOUND_HTTP_TIMEOUT_MS: '250' }).timeoutMs).toBe(250);
    expect(resolveHttpClientOptions({ timeoutMs: 90 }, { OUTBOUND_HTTP_TIMEOUT_MS: '250' }).timeoutMs).toBe(90);
  });

  it.each(['0', '-1', '1.5', 'soon', String(2 ** 31)])('refuses OUTBOUND_HTTP_TIMEOUT_MS=%p with its name', (raw) => {
    expect(() => resolveHttpClientOptions({}, { OUTBOUND_HTTP_TIMEOUT_MS: raw })).toThrow(/OUTBOUND_HTTP_TIMEOUT_MS/);
  });

  it('refuses a user agent that is not a header value', () => {
    expect(() => resolveHttpClientOptions({ userAgent: 'strata\r\nX-Evil: 1' }, {})).toThrow(/not a valid header value/);
  });
});
