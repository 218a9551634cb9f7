import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, exactly as sent (what a receiver must verify). */
  body: string;
  /** When the request ended, ms since the epoch. */
  receivedAt: number;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hooks/<name>` */
  url: string;
  received: ReceivedRequest[];
  /** Answers these statuses in order, then `fallback` (default 200). */
  answer(statuses: number[], fallback?: number): void;
  /** Holds every answer this long (to make callers time out). */
  delay(ms: number): void;
  close(): Promise<void>;
}

/** A real node:http receiver on an ephemeral port that records every request it gets. */
export async function startWebhookReceiver(name = 'receiver'): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  let queue: number[] = [];
  let fallback = 200;
  let delayMs = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() });
      const status = queue.length ? queue.shift()! : fallback;
      const timer = setTimeout(() => res.writeHead(status, { 'content-type': 'text/plain' }).end(String(status)), delayMs);
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/${name}`,
    received,
    answer(statuses, fb = 200) {
      queue = [...statuses];
      fallback = fb;
    },
    delay(ms) {
      delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * What a receiver does, with the official Standard Webhooks library and nothing of ours: verify the
 * raw body against the request's headers with the endpoint's secret. Returns the parsed event;
 * throws the library's WebhookVerificationError when the request is not authentic or is stale.
 */
export function verifyAsReceiver(req: ReceivedRequest, secret: string): unknown {
  return new Webhook(secret).verify(req.body, req.headers as Record<string, string>);
}

/** Sets environment variables for the modules a test builds; the returned function restores them. */
export function overrideEnv(vars: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** The receivers a test file starts, closed together in afterAll. */
export function webhookReceivers(): { start(name: string): Promise<WebhookReceiver>; closeAll(): Promise<void> } {
  const started: WebhookReceiver[] = [];
  return {
    async start(name) {
      const r = await startWebhookReceiver(name);
      started.push(r);
      return r;
    },
    async closeAll() {
      for (const r of started.splice(0)) await r.close();
    },
  };
}
