import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import type { Test as SuperTest } from 'supertest';
import type { Tier } from '#strata/control-plane';
import { as } from '../support/cross-tenant';
import { moveAndWait, queryHome, tenantHome } from '../support/move-harness';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(60_000);

const TIERS = ['pool', 'bridge', 'silo'] as const;
const KEY = 'Idempotency-Key';
const REPLAYED = 'idempotent-replayed';
type Table = 'projects' | 'tasks' | 'invoices' | 'files' | 'webhook_endpoints' | 'idempotency_keys';

/** A new key per request a test means as new: what a client library generates per logical operation. */
const newKey = () => `test-${randomUUID()}`;

describe('Idempotency-Key on tenant create routes (over HTTP, every tier)', () => {
  let t: TestApp;
  let filesRoot: string;
  const tenants = new Map<Tier, OnboardedTenant>();
  /** A second tenant per tier: same-tier pairs share a pool's tables or a bridge database. */
  const neighbours = new Map<Tier, OnboardedTenant>();

  beforeAll(async () => {
    filesRoot = mkdtempSync(join(tmpdir(), 'strata-idem-files-'));
    // Read by StorageModule.forRoot() while the app is built.
    process.env.FILES_DRIVER = 'local';
    process.env.FILES_ROOT = filesRoot;
    t = await startTestApp();
    for (const tier of TIERS) {
      tenants.set(tier, await t.onboard(`idem-${tier}`, tier));
      neighbours.set(tier, await t.onboard(`idem-${tier}-b`, tier));
    }
  }, 90_000);
  afterAll(async () => {
    await t?.close();
    rmSync(filesRoot, { recursive: true, force: true });
  });

  const post = (who: OnboardedTenant, path: string, key?: string): SuperTest => {
    const req = t.http().post(path).set(as(who));
    return key === undefined ? req : req.set(KEY, key);
  };

  /** The tenant's rows in `table`, counted in its home as the owner (not through the API under test). */
  async function rowCount(who: OnboardedTenant, table: Table): Promise<number> {
    const home = await tenantHome(t, who.id);
    const [row] = await queryHome<{ n: number }>(t, home, who.id, `SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`, [who.id]);
    return row.n;
  }

  describe.each(TIERS)('on the %s tier', (tier) => {
    const me = () => tenants.get(tier)!;

    it('answers a repeated request with the first answer: one row, the same 201 body, Idempotent-Replayed on the repeat only', async () => {
      const key = newKey();
      const body = { name: `idem ${tier} once`, description: 'created once' };
      const first = await post(me(), '/projects', key).send(body).expect(201);
      expect(first.headers[REPLAYED]).toBeUndefined();
      const second = await post(me(), '/projects', key).send(body).expect(201);
      expect(second.headers[REPLAYED]).toBe('true');
      expect(second.body).toEqual(first.body);
      // Byte for byte, not only the same fields.
      expect(second.text).toBe(first.text);
      expect(second.headers['content-type']).toMatch(/^application\/json/);
      const listed = (await t.http().get('/projects').set(as(me())).expect(200)).body.items.filter((p: { name: string }) => p.name === body.name);
      expect(listed).toEqual([first.body]);
    });

    it('creates exactly one row for concurrent duplicates, every one of them answered with that row', async () => {
      const key = newKey();
      const body = { number: `idem-${tier}-concurrent`, amount: 1250, currency: 'EUR' };
      const answers = await Promise.all(Array.from({ length: 6 }, () => post(me(), '/invoices', key).send(body)));
      expect(answers.map((a) => a.status)).toEqual(Array(6).fill(201));
      const ids = new Set(answers.map((a) => a.body.id));
      expect(ids.size).toBe(1);
      expect(answers.filter((a) => a.headers[REPLAYED] === undefined)).toHaveLength(1);
      const listed = (await t.http().get('/invoices').set(as(me())).query({ limit: 100 }).expect(200)).body.items.filter(
        (i: { number: string }) => i.number === body.number,
      );
      expect(listed.map((i: { id: string }) => i.id)).toEqual([...ids]);
    });

    it('answers 422 idempotency_key_reused to the same key with another body or on another route, creating nothing', async () => {
      const key = newKey();
      const created = await post(me(), '/projects', key).send({ name: `idem ${tier} original` }).expect(201);
      const projectsBefore = await rowCount(me(), 'projects');
      const invoicesBefore = await rowCount(me(), 'invoices');

      const otherBody = await post(me(), '/projects', key).send({ name: `idem ${tier} changed` }).expect(422);
      expect(otherBody.body).toEqual({ statusCode: 422, error: 'idempotency_key_reused', message: expect.stringContaining('POST /projects') });
      const otherRoute = await post(me(), '/invoices', key).send({ number: `idem-${tier}-other-route`, amount: 1, currency: 'EUR' }).expect(422);
      expect(otherRoute.body.error).toBe('idempotency_key_reused');
      // A path id is part of the request too.
      const other = await post(me(), '/projects', newKey()).send({ name: `idem ${tier} other` }).expect(201);
      const taskKey = newKey();
      await post(me(), `/projects/${created.body.id}/tasks`, taskKey).send({ title: 'first' }).expect(201);
      expect((await post(me(), `/projects/${other.body.id}/tasks`, taskKey).send({ title: 'first' }).expect(422)).body.error).toBe('idempotency_key_reused');

      expect(await rowCount(me(), 'projects')).toBe(projectsBefore + 1);
      expect(await rowCount(me(), 'invoices')).toBe(invoicesBefore);
      // The original answer is still what the key replays.
      const replay = await post(me(), '/projects', key).send({ name: `idem ${tier} original` }).expect(201);
      expect(replay.body).toEqual(created.body);
    });

    it('leaves the key free when the first attempt failed validation (400) or hit a conflict (409)', async () => {
      const key = newKey();
      const invalid = await post(me(), '/invoices', key).send({ number: `idem-${tier}-v`, amount: -5, currency: 'EUR' }).expect(400);
      expect(invalid.body.error).toBe('validation_failed');
      // Not 422: the failed attempt recorded nothing, so a corrected body is a first request.
      const fixed = await post(me(), '/invoices', key).send({ number: `idem-${tier}-v`, amount: 5, currency: 'EUR' }).expect(201);
      expect(fixed.headers[REPLAYED]).toBeUndefined();

      const taken = `idem-${tier}-taken`;
      await post(me(), '/invoices').send({ number: taken, amount: 1, currency: 'EUR' }).expect(201);
      const conflictKey = newKey();
      expect((await post(me(), '/invoices', conflictKey).send({ number: taken, amount: 2, currency: 'EUR' }).expect(409)).body.error).toBe(
        'invoice_number_taken',
      );
      // The same request again runs again (and fails again): a failure is never replayed.
      expect((await post(me(), '/invoices', conflictKey).send({ number: taken, amount: 2, currency: 'EUR' }).expect(409)).headers[REPLAYED]).toBeUndefined();
      const retried = await post(me(), '/invoices', conflictKey).send({ number: `${taken}-2`, amount: 2, currency: 'EUR' }).expect(201);
      expect(retried.headers[REPLAYED]).toBeUndefined();
      expect((await post(me(), '/invoices', conflictKey).send({ number: `${taken}-2`, amount: 2, currency: 'EUR' }).expect(201)).body).toEqual(retried.body);

      // A 404 from inside the unit (no such project) rolls the key back too.
      const taskKey = newKey();
      await post(me(), `/projects/${randomUUID()}/tasks`, taskKey).send({ title: 'orphan' }).expect(404);
      const project = await post(me(), '/projects').send({ name: `idem ${tier} for tasks` }).expect(201);
      await post(me(), `/projects/${project.body.id}/tasks`, taskKey).send({ title: 'orphan' }).expect(201);
    });

    it("keeps keys per tenant: a neighbour on the same tier and tenants on other tiers using the key get their own resource, never the first tenant's answer", async () => {
      const key = newKey();
      const body = { name: 'shared key, separate tenants' };
      const mine = await post(me(), '/projects', key).send(body).expect(201);
      const others = [neighbours.get(tier)!, ...TIERS.filter((x) => x !== tier).map((x) => tenants.get(x)!)];
      for (const other of others) {
        const theirs = await post(other, '/projects', key).send(body).expect(201);
        expect(theirs.headers[REPLAYED]).toBeUndefined();
        expect(theirs.body.id).not.toBe(mine.body.id);
        // Their own replay is theirs; a different body under the key is only refused by the tenant that used it.
        expect((await post(other, '/projects', key).send(body).expect(201)).body).toEqual(theirs.body);
      }
      expect((await post(me(), '/projects', key).send(body).expect(201)).body).toEqual(mine.body);
    });

    it('replays webhook registrations (secret included) and file uploads (one object) as well', async () => {
      const hookKey = newKey();
      const hookBody = { url: `https://hooks.example.com/idem-${tier}` };
      const hook = await post(me(), '/webhooks', hookKey).send(hookBody).expect(201);
      expect(hook.body.secret).toMatch(/^whsec_/);
      const hookAgain = await post(me(), '/webhooks', hookKey).send(hookBody).expect(201);
      expect(hookAgain.headers[REPLAYED]).toBe('true');
      expect(hookAgain.body).toEqual(hook.body);

      const fileKey = newKey();
      const upload = (bytes: string, key = fileKey) =>
        post(me(), '/files', key).attach('file', Buffer.from(bytes), { filename: 'report.txt', contentType: 'text/plain' });
      const file = await upload('quarterly numbers').expect(201);
      const fileAgain = await upload('quarterly numbers').expect(201);
      expect(fileAgain.headers[REPLAYED]).toBe('true');
      expect(fileAgain.body).toEqual(file.body);
      // The bytes are part of the request: other content under the key is another request.
      expect((await upload('other numbers').expect(422)).body.error).toBe('idempotency_key_reused');
      const dir = join(filesRoot, me().id, 'files');
      expect(existsSync(dir) ? readdirSync(dir).filter((n) => n === file.body.id) : []).toEqual([file.body.id]);
      expect((await t.http().get('/files').set(as(me())).query({ limit: 100 }).expect(200)).body.items.filter((f: { id: string }) => f.id === file.body.id)).toHaveLength(1);
    });
  });

  it('answers 400 invalid_idempotency_key to a malformed key before running anything', async () => {
    const me = tenants.get('pool')!;
    const before = await rowCount(me, 'projects');
    // 'clé' leaves the client as a latin1 byte, which HTTP allows in a header value and the key does not.
    for (const key of ['k'.repeat(256), 'clé', 'a\tb']) {
      const res = await post(me, '/projects', key).send({ name: 'never created' });
      expect({ key, status: res.status, error: res.body.error }).toEqual({ key, status: 400, error: 'invalid_idempotency_key' });
    }
    expect(await rowCount(me, 'projects')).toBe(before);
  });

  it('changes nothing for a request without the header: two identical creates make two rows', async () => {
    const me = tenants.get('bridge')!;
    const body = { name: 'no key, twice' };
    const a = await post(me, '/projects').send(body).expect(201);
    const b = await post(me, '/projects').send(body).expect(201);
    expect(a.body.id).not.toBe(b.body.id);
    expect(b.headers[REPLAYED]).toBeUndefined();
  });

  it("answers every tenant POST route's malformed key with 400 invalid_idempotency_key (each create route honours the header)", async () => {
    // Routes that create nothing a retry could duplicate, and why.
    const exempt: Record<string, string> = {
      'POST /auth/login': 'tenant-anonymous; issues a token, creates nothing',
      'POST /auth/refresh': 'rotates a session; a retry with the used token is reuse, by design (sessions.e2e-spec.ts)',
      'POST /auth/logout': 'revokes a session: the same answer however often it is sent',
      'POST /auth/password': 'changes a password: a retry with the old one fails, with the new one changes nothing',
      'POST /auth/tenants': 'a lookup: creates nothing',
      'POST /auth/invitations/accept': 'an invitation is accepted once: a retry finds it used',
      'POST /members/invitations': 'inviting the same address again replaces the one open invitation (one per email and tenant)',
      'POST /webhooks/:id/rotate-secret': 'never replayed: the idempotency store would hold the new signing secret',
      'POST /webhooks/:id/ping': 'a retry repeats a delivery its receiver deduplicates on webhook-id',
      'POST /webhooks/:id/deliveries/:deliveryId/redeliver': 'a retry repeats a delivery its receiver deduplicates on webhook-id',
      'POST /invoices/:id/void': 'a status transition; voiding a void invoice again is a no-op',
      'POST /signup': 'public, no tenant yet (the idempotency store lives in a tenant home): a retry with the same slug, email and password answers the first signup again (libs/platform/onboarding README)',
      'POST /export': 'queues a job in the control plane, not a row of the tenant home the key store lives in; a retry queues a second export of the same data',
    };
    const express = t.app.getHttpAdapter().getInstance() as { router?: { stack: RouterLayer[] }; _router?: { stack: RouterLayer[] } };
    const tenantPosts = ((express.router ?? express._router)?.stack ?? [])
      .flatMap((layer) => (layer.route?.methods.post ? [`POST ${layer.route.path}`] : []))
      // Middleware mounts ({/*splat}) are not routes; operators' and infrastructure routes serve no tenant.
      .filter((r) => r.startsWith('POST /') && !/^POST \/(admin|health|metrics|bench)\b/.test(r));
    expect(tenantPosts).toEqual(expect.arrayContaining(['POST /projects', 'POST /projects/:id/tasks', 'POST /invoices', 'POST /files', 'POST /webhooks']));
    const me = tenants.get('silo')!;
    const answers: Record<string, string> = {};
    for (const route of tenantPosts.filter((r) => !(r in exempt))) {
      const path = route.slice('POST '.length).replace(/:[A-Za-z]+/g, randomUUID());
      const res = await post(me, path, 'k'.repeat(256)).send({});
      answers[route] = `${res.status} ${res.body.error}`;
    }
    expect(Object.values(answers).every((a) => a === '400 invalid_idempotency_key') ? [] : answers).toEqual([]);
  });

  it('turns a client timeout and its retry into one create, while the first request is still stuck on a lock', async () => {
    // The reproduction: the first request waits on a lock past the client's patience; the
    // client gives up and retries with the same key. The abandoned request is cancelled on the server
    // (TenantConnectionManager: a client that leaves rolls its unit back), key included, so the retry
    // waits for that rollback on the key, then runs as the first request: one project either way.
    const me = tenants.get('pool')!;
    const home = await tenantHome(t, me.id);
    const owner = new URL(t.db.ownerUrl);
    const locker = new Client({ host: home.host, port: home.port, database: home.database, user: decodeURIComponent(owner.username), password: owner.password || undefined });
    await locker.connect();
    const key = newKey();
    const body = { name: 'created once although the client gave up' };
    const before = await rowCount(me, 'projects');
    try {
      await locker.query('BEGIN');
      // Blocks every INSERT into the table (the key's INSERT goes to another table and succeeds).
      await locker.query(`LOCK TABLE "${home.schema}".projects IN SHARE MODE`);
      const gaveUp = await post(me, '/projects', key).send(body).timeout(500).then(
        () => 'answered',
        (err: { timeout?: number }) => (err.timeout ? 'timed out' : String(err)),
      );
      expect(gaveUp).toBe('timed out');
      const retry = post(me, '/projects', key).send(body).then((r) => r);
      await new Promise((r) => setTimeout(r, 300));
      await locker.query('COMMIT');
      const answer = await retry;
      expect(answer.status).toBe(201);
      expect(await rowCount(me, 'projects')).toBe(before + 1);
      const listed = (await t.http().get('/projects').set(as(me)).query({ limit: 100 }).expect(200)).body.items.filter((p: { name: string }) => p.name === body.name);
      expect(listed).toEqual([answer.body]);
      // And every later retry of it replays that one project.
      const again = await post(me, '/projects', key).send(body).expect(201);
      expect([again.headers[REPLAYED], again.body]).toEqual(['true', answer.body]);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
  });

  it('frees a key once it is older than the retention: it then answers a new request instead of 422', async () => {
    const me = tenants.get('silo')!;
    const key = newKey();
    const first = await post(me, '/projects', key).send({ name: 'before expiry' }).expect(201);
    const home = await tenantHome(t, me.id);
    const aged = await queryHome(t, home, me.id, `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE tenant_id = $1 AND idempotency_key = $2 RETURNING id`, [me.id, key]);
    expect(aged).toHaveLength(1);
    const second = await post(me, '/projects', key).send({ name: 'after expiry' }).expect(201);
    expect(second.headers[REPLAYED]).toBeUndefined();
    expect(second.body.id).not.toBe(first.body.id);
    // The key now answers for the new request, and is one row again.
    expect((await post(me, '/projects', key).send({ name: 'after expiry' }).expect(201)).body).toEqual(second.body);
    expect(await queryHome(t, home, me.id, `SELECT count(*)::int AS n FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2`, [me.id, key])).toEqual([{ n: 1 }]);
  });

  it.each<[Tier, Tier]>([
    ['pool', 'silo'],
    ['silo', 'bridge'],
  ])('keeps a key through a move from %s to %s: the retry after the move replays, no second row', async (from, to) => {
    const mover = await t.onboard(`idem-mv-${from}`, from);
    const key = newKey();
    const body = { name: `made on ${from}` };
    const created = await post(mover, '/projects', key).send(body).expect(201);
    const view = await moveAndWait(t, mover.id, to);
    expect(view.phase).toBe('done');
    expect(view.checks?.find((c: { table: string }) => c.table === 'idempotency_keys')).toMatchObject({ sourceRows: 1, targetRows: 1 });
    expect((await tenantHome(t, mover.id)).tier).toBe(to);
    const replay = await post(mover, '/projects', key).send(body).expect(201);
    expect(replay.headers[REPLAYED]).toBe('true');
    expect(replay.body).toEqual(created.body);
    expect(await rowCount(mover, 'projects')).toBe(1);
    expect((await post(mover, '/projects', key).send({ name: 'another' }).expect(422)).body.error).toBe('idempotency_key_reused');
  });
});

interface RouterLayer {
  route?: { path: string; methods: Record<string, boolean> };
}
