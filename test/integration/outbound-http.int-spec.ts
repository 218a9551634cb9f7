import { randomUUID } from 'node:crypto';
import { Global, Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { ClsModule } from 'nestjs-cls';
import { HttpClientModule, OutboundRequestError, OutboundTimeoutError, TenantHttpClient } from '#strata/http-client';
import { MissingTenantContextError, TenantContext } from '#strata/tenancy/platform';
import { createTenancyFixture, rejectionOf, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

jest.setTimeout(60_000);

// The client needs only the tenant context (global in the apps); tenants come from the real registry.
@Global()
@Module({ providers: [TenantContext], exports: [TenantContext] })
class TenantContextOnly {}

describe('outbound HTTP carries the tenant of its context (real node:http server)', () => {
  let fx: TenancyFixture;
  let mod: TestingModule;
  let client: TenantHttpClient;
  let ctx: TenantContext;
  let receiver: WebhookReceiver;
  const tenants: TestTenant[] = [];

  beforeAll(async () => {
    fx = await createTenancyFixture();
    for (const tier of ['pool', 'bridge', 'silo'] as const) tenants.push(await fx.onboard(tier, `http-${tier}`));
    mod = await Test.createTestingModule({
      imports: [ClsModule.forRoot({ global: true }), TenantContextOnly, HttpClientModule.forRoot({ timeoutMs: 2000 })],
    }).compile();
    client = mod.get(TenantHttpClient);
    ctx = mod.get(TenantContext);
    receiver = await startWebhookReceiver('outbound');
  });

  afterAll(async () => {
    await receiver?.close();
    await mod?.close();
    await fx?.close();
  });

  beforeEach(() => {
    receiver.received.length = 0;
    receiver.answer([]);
    receiver.delay(0);
  });

  it.each(['pool', 'bridge', 'silo'] as const)('sends the %s tenant id and the request id of the current context', async (tier) => {
    const t = tenants.find((x) => x.tier === tier)!;
    const requestId = `req-${randomUUID()}`;
    const res = await ctx.run({ tenant: t.placement, requestId }, () => client.fetch(receiver.url, { method: 'POST', body: '{}' }));
    expect(res.status).toBe(200);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0].headers).toMatchObject({ 'x-tenant-id': t.id, 'x-request-id': requestId });
    expect(receiver.received[0].headers['user-agent']).toMatch(/^strata\//);
  });

  it('keeps two tenants apart when their calls interleave concurrently', async () => {
    const [a, b] = tenants;
    receiver.delay(5);
    const calls = Array.from({ length: 20 }, (_, i) => {
      const t = i % 2 === 0 ? a : b;
      const requestId = `req-${t.tier}-${i}-${randomUUID().slice(0, 8)}`;
      return ctx.run({ tenant: t.placement, requestId }, async () => {
        await new Promise((r) => setTimeout(r, Math.random() * 10));
        await client.fetch(`${receiver.url}?call=${i}`, { headers: { 'x-tenant-id': 'forged' } });
        return { i, tenant: t.id, requestId };
      });
    });
    const sent = await Promise.all(calls);
    expect(receiver.received).toHaveLength(20);
    for (const r of receiver.received) {
      const call = sent[Number(new URL(r.path, 'http://x').searchParams.get('call'))];
      expect({ tenant: r.headers['x-tenant-id'], request: r.headers['x-request-id'] }).toEqual({ tenant: call.tenant, request: call.requestId });
    }
  });

  it('gives up on a slow server at the deadline with OutboundTimeoutError', async () => {
    receiver.delay(5000);
    const started = Date.now();
    const err = await rejectionOf(ctx.run({ tenant: tenants[0].placement }, () => client.fetch(receiver.url, { timeoutMs: 150 })));
    expect(err).toBeInstanceOf(OutboundTimeoutError);
    expect(err.message).toMatch(/timed out after 150 ms/);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('reports a refused connection as OutboundRequestError', async () => {
    const closed = await startWebhookReceiver('closed');
    const url = closed.url;
    await closed.close();
    const err = await rejectionOf(ctx.run({ tenant: tenants[0].placement }, () => client.fetch(url)));
    expect(err).toBeInstanceOf(OutboundRequestError);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('refuses to call out without a tenant context, and no request reaches the server', async () => {
    const err = await rejectionOf(client.fetch(receiver.url));
    expect(err).toBeInstanceOf(MissingTenantContextError);
    expect(err.message).toMatch(/no tenant context: an outbound HTTP call/);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.received).toHaveLength(0);
  });
});
