import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookEgress } from './webhook-egress.dispatcher';
import type { WebhooksOptions } from './webhooks.options';

const options = (allowPrivateNetworks: boolean): WebhooksOptions => ({ allowPrivateNetworks, maxAttempts: 1, backoffMs: 1, timeoutMs: 1000, relayAfterMs: 60_000, relayBatchSize: 500, secretGraceMs: 0, deliveryRetentionMs: 60_000 });

describe('webhook egress', () => {
  let server: Server;
  let port: number;
  let hits = 0;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('refuses, inside the connect, a host name that resolves to a loopback address', async () => {
    const egress = new WebhookEgress(options(false));
    try {
      const err = await fetch(`http://localhost:${port}/`, { dispatcher: egress.dispatcher as unknown as RequestInit['dispatcher'] }).catch((e: unknown) => e);
      expect((err as Error).message).toBe('fetch failed');
      // Node's fetch re-wraps a cause from another realm (jest's) as Error("<name>: <message>").
      expect(String((err as Error).cause)).toMatch(/BlockedDestinationError: webhook destination localhost is resolved to 127\.0\.0\.1, a loopback address/);
      expect(hits).toBe(0);
    } finally {
      await egress.onApplicationShutdown();
    }
  });

  it('uses the default dispatcher when private networks are allowed', async () => {
    const egress = new WebhookEgress(options(true));
    expect(egress.dispatcher).toBeUndefined();
    const res = await fetch(`http://localhost:${port}/`);
    expect(res.status).toBe(200);
    expect(hits).toBe(1);
  });
});
