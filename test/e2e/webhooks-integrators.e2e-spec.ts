import { randomBytes } from 'node:crypto';
import { escapeIdentifier, Client } from 'pg';
import { WebhookVerificationError } from 'standardwebhooks';
import { TenantRegistry } from '#strata/control-plane';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { placementOf, TenantConnectionManager, TenantContext } from '#strata/tenancy/platform';
import { WEBHOOK_EVENT_TYPES, WebhookLogRetention, type WebhookEvent } from '#strata/webhooks';
import { as } from '../support/cross-tenant';
import { sleep, waitFor } from '../support/tenancy-fixture';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { overrideEnv, verifyAsReceiver, webhookReceivers, type ReceivedRequest, type WebhookReceiver } from '../support/webhook-receiver';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(60_000);

// The API and the worker meet on this file's own BullMQ prefix; receivers listen on 127.0.0.1.
const PREFIX = `strata-test-${randomBytes(4).toString('hex')}`;
const ENV = {
  JOBS_PREFIX: PREFIX,
  WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_BACKOFF_MS: '40',
  WEBHOOK_MAX_ATTEMPTS: '2',
  WEBHOOK_TIMEOUT_MS: '2000',
  WEBHOOK_SECRET_GRACE_MS: String(3600_000),
  WEBHOOK_DELIVERY_RETENTION_MS: String(24 * 3600_000),
};

interface Delivery {
  id: string;
  endpointId: string;
  createdAt: string;
  eventId: string;
  eventType: string;
  status: string;
  attempts: number;
  redeliveryOf: string | null;
}

describe('webhooks for integrators over HTTP, delivered by the real worker', () => {
  let t: TestApp;
  let worker: TestWorker;
  let owner: OnboardedTenant;
  let restoreEnv: () => void = () => undefined;
  const receivers = webhookReceivers();

  beforeAll(async () => {
    restoreEnv = overrideEnv(ENV);
    t = await startTestApp();
    worker = await startTestWorker(t.config, { prefix: PREFIX, ownsPrefix: true });
    owner = await t.onboard('integrator', 'pool');
  }, 90_000);
  afterAll(async () => {
    await worker?.close();
    await t?.close();
    await receivers.closeAll();
    restoreEnv();
  });

  const register = async (receiver: WebhookReceiver, events?: string[]) =>
    (await t.http().post('/webhooks').set(as(owner)).send({ url: receiver.url, ...(events ? { events } : {}) }).expect(201)).body as {
      id: string;
      secret: string;
    };
  const deliveriesOf = async (endpointId: string): Promise<Delivery[]> =>
    (await t.http().get(`/webhooks/${endpointId}/deliveries?limit=100`).set(as(owner)).expect(200)).body.items;
  const eventOf = (req: ReceivedRequest) => JSON.parse(req.body) as WebhookEvent<Record<string, unknown>>;
  const received = (r: WebhookReceiver, n: number) => waitFor(() => r.received.length, (k) => k >= n, 10_000);

  it('subscribes a new endpoint to every event type by default, the new ones included', async () => {
    const r = await receivers.start('defaults');
    const endpoint = await register(r);
    const got = await t.http().get(`/webhooks/${endpoint.id}`).set(as(owner)).expect(200);
    expect(got.body).toMatchObject({ events: [...WEBHOOK_EVENT_TYPES], enabled: true });
    expect(WEBHOOK_EVENT_TYPES).toEqual(
      expect.arrayContaining(['invoice.updated', 'project.created', 'project.updated', 'project.deleted', 'task.created', 'task.updated', 'task.deleted']),
    );
  });

  it('updates an endpoint\'s url and events, and a disabled endpoint gets no new deliveries until enabled again', async () => {
    const [first, second] = [await receivers.start('update-1'), await receivers.start('update-2')];
    const endpoint = await register(first, ['invoice.created']);

    const patched = await t.http().patch(`/webhooks/${endpoint.id}`).set(as(owner)).send({ url: second.url, events: ['project.created'] }).expect(200);
    expect(patched.body).toMatchObject({ id: endpoint.id, url: second.url, events: ['project.created'], enabled: true });
    expect(JSON.stringify(patched.body)).not.toContain(endpoint.secret);

    const disabled = await t.http().patch(`/webhooks/${endpoint.id}`).set(as(owner)).send({ enabled: false }).expect(200);
    expect(disabled.body).toMatchObject({ enabled: false, url: second.url });
    await t.http().post('/projects').set(as(owner)).send({ name: 'while disabled' }).expect(201);
    await sleep(500);
    expect(second.received).toHaveLength(0);
    expect(await deliveriesOf(endpoint.id)).toEqual([]);

    await t.http().patch(`/webhooks/${endpoint.id}`).set(as(owner)).send({ enabled: true }).expect(200);
    const project = await t.http().post('/projects').set(as(owner)).send({ name: 'after enabling' }).expect(201);
    await received(second, 1);
    expect(first.received).toHaveLength(0);
    expect(eventOf(second.received[0])).toMatchObject({ type: 'project.created', data: { id: project.body.id, name: 'after enabling' } });
  });

  it('refuses a bad update with 400: the URL is checked as at registration, unknown events and a non-boolean enabled are validation errors', async () => {
    const endpoint = await register(await receivers.start('bad-update'));
    for (const body of [{ url: 'not a url' }, { url: 'https://user:pw@example.com/' }]) {
      expect((await t.http().patch(`/webhooks/${endpoint.id}`).set(as(owner)).send(body).expect(400)).body.error).toBe('invalid_webhook_url');
    }
    for (const body of [{ events: ['invoice.exploded'] }, { events: [] }, { enabled: 'no' }, { secret: 'whsec_mine' }]) {
      expect((await t.http().patch(`/webhooks/${endpoint.id}`).set(as(owner)).send(body).expect(400)).body.error).toBe('validation_failed');
    }
  });

  it('rotates the secret: shown once, and during the grace period each delivery carries two signatures, each verifiable with one secret', async () => {
    const r = await receivers.start('rotate');
    const endpoint = await register(r, ['invoice.created']);
    const rotated = await t.http().post(`/webhooks/${endpoint.id}/rotate-secret`).set(as(owner)).expect(200);
    expect(rotated.body).toEqual({ id: endpoint.id, secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/), previousSecretExpiresAt: expect.any(String) });
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    const graceEnds = Date.parse(rotated.body.previousSecretExpiresAt) - Date.now();
    expect(graceEnds).toBeGreaterThan(3500_000);
    expect(graceEnds).toBeLessThanOrEqual(3600_000 + 5000);
    const got = await t.http().get(`/webhooks/${endpoint.id}`).set(as(owner)).expect(200);
    expect(JSON.stringify(got.body)).not.toContain(rotated.body.secret);

    await t.http().post('/invoices').set(as(owner)).send({ number: 'ROT-1', amount: 100, currency: 'EUR' }).expect(201);
    const [req] = (await received(r, 1), r.received);
    expect(String(req.headers['webhook-signature'])).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
    // A receiver holding either secret verifies the same request with the official library.
    expect(verifyAsReceiver(req, rotated.body.secret)).toMatchObject({ type: 'invoice.created' });
    expect(verifyAsReceiver(req, endpoint.secret)).toMatchObject({ type: 'invoice.created' });
    expect(() => verifyAsReceiver(req, `whsec_${randomBytes(32).toString('base64')}`)).toThrow(WebhookVerificationError);

    // Rotating again ends the first secret's grace: only the last two secrets sign.
    const again = await t.http().post(`/webhooks/${endpoint.id}/rotate-secret`).set(as(owner)).expect(200);
    await t.http().post('/invoices').set(as(owner)).send({ number: 'ROT-2', amount: 100, currency: 'EUR' }).expect(201);
    await received(r, 2);
    const second = r.received[1];
    expect(verifyAsReceiver(second, again.body.secret)).toBeTruthy();
    expect(verifyAsReceiver(second, rotated.body.secret)).toBeTruthy();
    expect(() => verifyAsReceiver(second, endpoint.secret)).toThrow(WebhookVerificationError);
  });

  it('sends a signed webhook.ping to one endpoint when asked, whatever it subscribes to', async () => {
    const [r, other] = [await receivers.start('ping'), await receivers.start('ping-other')];
    const endpoint = await register(r, ['task.deleted']);
    await register(other);
    const ping = await t.http().post(`/webhooks/${endpoint.id}/ping`).set(as(owner)).expect(202);
    expect(ping.body).toMatchObject({ id: expect.any(String), eventType: 'webhook.ping', status: 'pending', attempts: 0, redeliveryOf: null });
    await received(r, 1);
    const event = verifyAsReceiver(r.received[0], endpoint.secret) as WebhookEvent;
    expect(event).toMatchObject({ id: ping.body.eventId, type: 'webhook.ping', data: { endpointId: endpoint.id } });
    await sleep(200);
    expect(other.received).toHaveLength(0);
    const [logged] = await waitFor(() => deliveriesOf(endpoint.id), (d) => d[0]?.status === 'delivered', 5000);
    expect(logged).toMatchObject({ id: ping.body.id, status: 'delivered', attempts: 1 });

    await t.http().patch(`/webhooks/${endpoint.id}`).set(as(owner)).send({ enabled: false }).expect(200);
    expect((await t.http().post(`/webhooks/${endpoint.id}/ping`).set(as(owner)).expect(409)).body.error).toBe('webhook_disabled');
  });

  it('redelivers a failed delivery as a new delivery of the same event, with the same webhook-id', async () => {
    const r = await receivers.start('redeliver');
    r.answer([500, 500], 200); // both attempts (WEBHOOK_MAX_ATTEMPTS=2) fail, the redelivery succeeds
    const endpoint = await register(r, ['invoice.created']);
    await t.http().post('/invoices').set(as(owner)).send({ number: 'REDELIVER-1', amount: 7, currency: 'EUR' }).expect(201);
    const [failed] = await waitFor(() => deliveriesOf(endpoint.id), (d) => d[0]?.status === 'failed', 10_000);
    expect(failed.attempts).toBe(2);

    const again = await t.http().post(`/webhooks/${endpoint.id}/deliveries/${failed.id}/redeliver`).set(as(owner)).expect(202);
    expect(again.body).toMatchObject({ eventId: failed.eventId, eventType: 'invoice.created', status: 'pending', redeliveryOf: failed.id });
    expect(again.body.id).not.toBe(failed.id);
    await received(r, 3);
    const last = r.received[2];
    expect(last.headers['webhook-id']).toBe(failed.eventId);
    expect(verifyAsReceiver(last, endpoint.secret)).toMatchObject({ id: failed.eventId, data: { number: 'REDELIVER-1' } });
    const log = await waitFor(() => deliveriesOf(endpoint.id), (d) => d.some((x) => x.id === again.body.id && x.status === 'delivered'), 5000);
    expect(log.find((x) => x.id === failed.id)).toMatchObject({ status: 'failed', attempts: 2 });

    const missing = await t.http().post(`/webhooks/${endpoint.id}/deliveries/${endpoint.id}/redeliver`).set(as(owner)).expect(404);
    expect(missing.body.error).toBe('webhook_delivery_not_found');
    expect((await t.http().post(`/webhooks/${endpoint.id}/deliveries/nope/redeliver`).set(as(owner)).expect(400)).body.error).toBe('invalid_id');
  });

  it("lists the tenant's deliveries across its endpoints, a deleted endpoint's too, newest first, filtered by status a page at a time", async () => {
    const ok = await receivers.start('all-deliveries-ok');
    const failing = await receivers.start('all-deliveries-failing');
    failing.answer([500, 500]);
    const kept = await register(ok, ['project.created']);
    const gone = await register(failing, ['project.created']);
    await t.http().post('/projects').set(as(owner)).send({ name: 'tenant-wide deliveries' }).expect(201);
    await waitFor(() => deliveriesOf(gone.id), (d) => d[0]?.status === 'failed', 10_000);
    await waitFor(() => deliveriesOf(kept.id), (d) => d[0]?.status === 'delivered', 10_000);
    await t.http().delete(`/webhooks/${gone.id}`).set(as(owner)).expect(204);

    const all = await t.http().get('/webhooks/deliveries?limit=100').set(as(owner)).expect(200);
    const ours = all.body.items.filter((d: Delivery) => d.endpointId === kept.id || d.endpointId === gone.id);
    expect(ours.map((d: Delivery) => d.endpointId).sort()).toEqual([kept.id, gone.id].sort());
    const created = all.body.items.map((d: Delivery) => Date.parse(d.createdAt));
    expect(created).toEqual([...created].sort((a, b) => b - a));

    const failed = await t.http().get('/webhooks/deliveries?status=failed&limit=1').set(as(owner)).expect(200);
    expect(failed.body.items).toHaveLength(1);
    expect(failed.body.items[0]).toMatchObject({ status: 'failed' });
    const everyFailed = await t.http().get('/webhooks/deliveries?status=failed&limit=100').set(as(owner)).expect(200);
    expect(everyFailed.body.items.every((d: Delivery) => d.status === 'failed')).toBe(true);
    expect(everyFailed.body.items.some((d: Delivery) => d.endpointId === gone.id)).toBe(true);
    if (failed.body.nextCursor) {
      // A cursor belongs to the filter it was issued for.
      const other = await t.http().get(`/webhooks/deliveries?status=delivered&cursor=${encodeURIComponent(failed.body.nextCursor)}`).set(as(owner)).expect(400);
      expect(other.body.error).toBe('invalid_cursor');
    }
    expect((await t.http().get('/webhooks/deliveries?status=lost').set(as(owner)).expect(400)).body.error).toBe('validation_failed');
  });

  it('delivers project and task created/updated/deleted events, and none for a change that failed', async () => {
    const r = await receivers.start('domain-events');
    const endpoint = await register(r, ['project.created', 'project.updated', 'project.deleted', 'task.created', 'task.updated', 'task.deleted']);
    const project = (await t.http().post('/projects').set(as(owner)).send({ name: 'Apollo' }).expect(201)).body;
    await t.http().patch(`/projects/${project.id}`).set(as(owner)).send({ name: 'Apollo 11' }).expect(200);
    const task = (await t.http().post(`/projects/${project.id}/tasks`).set(as(owner)).send({ title: 'launch' }).expect(201)).body;
    await t.http().patch(`/tasks/${task.id}`).set(as(owner)).send({ status: 'done' }).expect(200);
    await t.http().delete(`/tasks/${task.id}`).set(as(owner)).expect(204);
    await t.http().delete(`/projects/${project.id}`).set(as(owner)).expect(204);
    // A failed change emits nothing: an unknown project's update is a 404 and no event.
    await t.http().patch(`/projects/${task.id}`).set(as(owner)).send({ name: 'ghost' }).expect(404);

    await received(r, 6);
    await sleep(300);
    const events = r.received.map((req) => verifyAsReceiver(req, endpoint.secret) as WebhookEvent<Record<string, unknown>>);
    const byType = Object.fromEntries(events.map((e) => [e.type, e.data]));
    expect(events.map((e) => e.type).sort()).toEqual(['project.created', 'project.deleted', 'project.updated', 'task.created', 'task.deleted', 'task.updated']);
    expect(byType['project.created']).toMatchObject({ id: project.id, name: 'Apollo' });
    expect(byType['project.updated']).toMatchObject({ id: project.id, name: 'Apollo 11' });
    expect(byType['task.created']).toMatchObject({ id: task.id, title: 'launch' });
    expect(byType['task.updated']).toMatchObject({ id: task.id, status: 'done' });
    expect(byType['task.deleted']).toEqual({ id: task.id });
    expect(byType['project.deleted']).toEqual({ id: project.id });
  });

  it('delivers invoice.updated as the invoices lib emits it: inside the changing transaction, rolled back with it', async () => {
    const r = await receivers.start('invoice-updated');
    const endpoint = await register(r, ['invoice.updated']);
    const invoice = (await t.http().post('/invoices').set(as(owner)).send({ number: 'UPD-1', amount: 5, currency: 'EUR' }).expect(201)).body;
    // The invoices lib's update routes come from another branch: emit exactly what they emit, in an
    // API tenant transaction (the listener joins it), once committed and once rolled back.
    const placement = placementOf((await t.app.get(TenantRegistry).findById(owner.id))!);
    const emitIn = (data: object, fail: boolean) =>
      t.app.get(TenantContext).run({ tenant: placement }, () =>
        t.app.get(TenantConnectionManager).transaction(async () => {
          await t.app.get(EventEmitter2).emitAsync('invoice.updated', data);
          if (fail) throw new Error('the update failed after emitting');
        }),
      );
    await expect(emitIn({ ...invoice, amount: 999 }, true)).rejects.toThrow('the update failed after emitting');
    await emitIn({ ...invoice, amount: 6 }, false);
    await received(r, 1);
    await sleep(300);
    expect(r.received).toHaveLength(1);
    expect(verifyAsReceiver(r.received[0], endpoint.secret)).toMatchObject({ type: 'invoice.updated', data: { id: invoice.id, amount: 6 } });
    expect(await deliveriesOf(endpoint.id)).toHaveLength(1);
  });

  it('keeps a deleted endpoint\'s delivery log readable until the retention, then the sweep removes both', async () => {
    const r = await receivers.start('retention');
    const endpoint = await register(r, ['invoice.created']);
    await t.http().post('/invoices').set(as(owner)).send({ number: 'KEEP-1', amount: 1, currency: 'EUR' }).expect(201);
    await waitFor(() => deliveriesOf(endpoint.id), (d) => d[0]?.status === 'delivered', 10_000);

    await t.http().delete(`/webhooks/${endpoint.id}`).set(as(owner)).expect(204);
    expect((await t.http().get(`/webhooks/${endpoint.id}`).set(as(owner)).expect(404)).body.error).toBe('webhook_not_found');
    for (const [method, path] of [['patch', ''], ['post', '/ping'], ['post', '/rotate-secret'], ['delete', '']] as const) {
      expect((await t.http()[method](`/webhooks/${endpoint.id}${path}`).set(as(owner)).send({ enabled: true })).status).toBe(404);
    }
    const kept = await deliveriesOf(endpoint.id);
    expect(kept).toEqual([expect.objectContaining({ eventType: 'invoice.created', status: 'delivered' })]);
    // A deleted endpoint gets no new deliveries.
    await t.http().post('/invoices').set(as(owner)).send({ number: 'KEEP-2', amount: 1, currency: 'EUR' }).expect(201);
    await sleep(300);
    expect(r.received).toHaveLength(1);

    // The sweep (each tenant's relay job runs it) as that tenant: nothing is old enough yet…
    const placement = placementOf((await worker.module.get(TenantRegistry).findById(owner.id))!);
    const prune = () => worker.module.get(TenantContext).run({ tenant: placement }, () => worker.module.get(WebhookLogRetention).prune());
    expect(await prune()).toEqual({ deliveries: 0, endpoints: 0 });
    expect(await deliveriesOf(endpoint.id)).toHaveLength(1);

    // …then the log and the deletion are made older than the retention (24 h here).
    const owner_ = new Client({ connectionString: t.db.ownerUrl });
    await owner_.connect();
    try {
      const schema = escapeIdentifier(placement.schemaName);
      await owner_.query(`UPDATE ${schema}.webhook_deliveries SET created_at = now() - interval '25 hours' WHERE tenant_id = $1 AND endpoint_id = $2`, [owner.id, endpoint.id]);
      await owner_.query(`UPDATE ${schema}.webhook_endpoints SET deleted_at = now() - interval '25 hours' WHERE tenant_id = $1 AND id = $2`, [owner.id, endpoint.id]);
    } finally {
      await owner_.end();
    }
    expect(await prune()).toEqual({ deliveries: 1, endpoints: 1 });
    expect((await t.http().get(`/webhooks/${endpoint.id}/deliveries`).set(as(owner)).expect(404)).body.error).toBe('webhook_not_found');
  });
});
