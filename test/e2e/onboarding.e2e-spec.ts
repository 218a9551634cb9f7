import type { DynamicModule } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Redis } from 'ioredis';
import { Client, escapeIdentifier } from 'pg';
import request from 'supertest';
import type { Tier } from '#strata/control-plane';
import { latestVersion, listFleetTargets } from '#strata/migrator';
import type { DeletionReportView } from '#strata/offboarding';
import { siloTemplateName } from '#strata/tenancy/platform';
import {
  DEFAULT_ONBOARDING_STEPS,
  ONBOARDING_EXECUTOR_HOOKS,
  OnboardingExecutor,
  OnboardingExecutorKilled,
  OnboardingService,
  OnboardingSteps,
  type OnboardingExecutorHooks,
} from '#strata/onboarding';
import { createApp } from '../../apps/api/src/app.factory';
import { dropRedisPrefix } from '../support/redis-prefix';
import { waitFor } from '../support/tenancy-fixture';
import { startTestApp, type TestApp } from '../support/test-app';
import { uniqueSlug } from '../support/test-database';
import { runInfo, urlFor } from '../support/test-env';

jest.setTimeout(120_000);

/**
 * The onboarding pipeline (libs/platform/onboarding) through the real API on real PostgreSQL:
 * crashes at each step resumed by another executor, a step that keeps failing, homes that already
 * exist (never touched), login while provisioning, `?async=true`, and self-service signup.
 *
 * Instances on one control plane: T (startTestApp) serves the admin API and signup and polls for no
 * onboarding itself (a request runs its own); R is "another process" whose executor a test runs
 * explicitly; W, in the async test, is a process whose executor polls in the background.
 */

/** A global module handing ONBOARDING_EXECUTOR_HOOKS to one app's OnboardingExecutor. */
function hooksModule(hooks: OnboardingExecutorHooks): DynamicModule {
  class OnboardingFaultHooksModule {}
  return { module: OnboardingFaultHooksModule, global: true, providers: [{ provide: ONBOARDING_EXECUTOR_HOOKS, useValue: hooks }], exports: [ONBOARDING_EXECUTOR_HOOKS] };
}

async function query<R = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as R[];
  } finally {
    await c.end();
  }
}

const PASSWORD = 'correct-horse-battery';

describe('onboarding pipeline (POST /admin/tenants, POST /signup)', () => {
  let t: TestApp;
  let other: NestExpressApplication;
  /** What the hooks of T do before each step attempt; each test sets its own and clears it. */
  const hooks: OnboardingExecutorHooks = {};
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const tenant = (id: string) => t.http().get(`/admin/tenants/${id}`).set(admin()).expect(200);
  const ownerQuery = <R = Record<string, unknown>>(sql: string, params: unknown[] = []) => query<R>(t.db.ownerUrl, sql, params);

  beforeAll(async () => {
    t = await startTestApp(
      { onboardingExecutor: false, signupEnabled: true, signupRateLimit: 7, onboardingLeaseMs: 1000 },
      { extra: { imports: [hooksModule(hooks)] } },
    );
    // Another process on the same control plane; signup switched off there.
    other = await createApp({ ...t.config, onboardingExecutor: false, signupEnabled: false }, { logger: ['error', 'fatal'] });
    await other.init();
  });

  afterEach(() => {
    delete hooks.beforeStep;
  });

  afterAll(async () => {
    await other?.close();
    await dropRedisPrefix(t?.config.redisUrl, `strata:rl:signup:${t?.db.name}`);
    await t?.close();
  });

  /** Expires the lease a killed executor left, as its running out would. */
  const abandonLease = (tenantId: string) =>
    ownerQuery(`UPDATE control.tenant_onboardings SET lease_until = now() - interval '1 second' WHERE tenant_id = $1`, [tenantId]);

  it.each<Tier>(['pool', 'bridge', 'silo'])('onboards a %s tenant synchronously: 201 once active, every step done once', async (tier) => {
    const slug = uniqueSlug(`sync-${tier}`);
    const res = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'Sync inc', tier }).expect(201);
    expect(res.body).toMatchObject({ slug, tier, status: 'active' });
    expect(res.body.steps).toEqual(DEFAULT_ONBOARDING_STEPS.map((name) => ({ name, state: 'done', attempts: 1, error: null })));
  });

  it.each([...DEFAULT_ONBOARDING_STEPS])('resumes an onboarding whose executor died at %s: another executor finishes it', async (step) => {
    const slug = uniqueSlug('resume');
    hooks.beforeStep = (name) => {
      if (name === step) throw new OnboardingExecutorKilled();
    };
    const accepted = await t.http().post('/admin/tenants?async=true').set(admin()).send({ slug, name: 'Resume inc', tier: 'bridge' }).expect(202);
    expect(accepted.headers.location).toBe(`/admin/tenants/${accepted.body.id}`);
    expect(await t.app.get(OnboardingExecutor).runOne(accepted.body.id)).toBe('abandoned');

    const stuck = await tenant(accepted.body.id);
    expect(stuck.body.status).toBe('provisioning');
    expect(stuck.body.steps.find((s: { name: string }) => s.name === step)).toMatchObject({ state: 'running', attempts: 1 });
    const login = await t.http().post('/auth/login').set('X-Tenant', slug).send({ email: `owner@${slug}.test`, password: PASSWORD }).expect(409);
    expect(login.body.error).toBe('tenant_provisioning');
    expect(login.headers['retry-after']).toBe('1');

    // The other process cannot take it while the dead one's lease lasts; once it ran out, it can.
    expect(await other.get(OnboardingExecutor).runOne(accepted.body.id)).toBeNull();
    await abandonLease(accepted.body.id);
    expect(await other.get(OnboardingExecutor).runOne(accepted.body.id)).toBe('active');

    const done = await tenant(accepted.body.id);
    expect(done.body.status).toBe('active');
    expect(done.body.steps.map((s: { name: string; state: string; attempts: number }) => [s.name, s.state, s.attempts])).toEqual(
      DEFAULT_ONBOARDING_STEPS.map((name) => [name, 'done', name === step ? 2 : 1]),
    );
  });

  it('runs the step list a request names: a step registered in place of seed_defaults (as restore will be) gets its params', async () => {
    const seen: Array<{ tenantId: string; params: Record<string, unknown> }> = [];
    t.app.get(OnboardingSteps).register({ name: 'restore_test', run: async (ctx) => void seen.push({ tenantId: ctx.tenant.id, params: ctx.onboarding.params }) });
    const onboarding = t.app.get(OnboardingService);
    const steps = ['create_home', 'migrate', 'restore_test', 'owner_membership'];
    await expect(onboarding.start({ slug: uniqueSlug('nostep'), name: 'x', tier: 'pool', steps: ['create_home', 'no_such_step'] })).rejects.toThrow(/no_such_step/);
    const created = await onboarding.start({ slug: uniqueSlug('restore'), name: 'Restore inc', tier: 'bridge', steps, params: { exportId: 'exp-1' } });
    expect((await onboarding.settle(created.id, 10_000)).status).toBe('active');
    expect(seen).toEqual([{ tenantId: created.id, params: { exportId: 'exp-1' } }]);
    expect((await tenant(created.id)).body.steps.map((s: { name: string }) => s.name)).toEqual(steps);
  });

  it('recognises on retry the home its own first attempt created but did not get to record', async () => {
    const slug = uniqueSlug('reclaim');
    hooks.beforeStep = (name) => {
      if (name === 'migrate') throw new OnboardingExecutorKilled();
    };
    const accepted = await t.http().post('/admin/tenants?async=true').set(admin()).send({ slug, name: 'Reclaim inc', tier: 'silo' }).expect(202);
    expect(await t.app.get(OnboardingExecutor).runOne(accepted.body.id)).toBe('abandoned');
    // As if the process died between CREATE DATABASE and writing that it did.
    await ownerQuery(
      `UPDATE control.tenant_onboardings SET home_created = false, lease_until = now() - interval '1 second',
              steps = jsonb_set(steps, '{0,state}', '"running"') WHERE tenant_id = $1`,
      [accepted.body.id],
    );
    expect(await other.get(OnboardingExecutor).runOne(accepted.body.id)).toBe('active');
    const [row] = await ownerQuery<{ home_created: boolean }>(`SELECT home_created FROM control.tenant_onboardings WHERE tenant_id = $1`, [accepted.body.id]);
    expect(row.home_created).toBe(true);
  });

  it('copies new silo databases from a template of this release prepared in the background (the migrate step finds nothing to do)', async () => {
    await t.http().post('/admin/tenants').set(admin()).send({ slug: uniqueSlug('tpl-first'), name: 'First inc', tier: 'silo' }).expect(201);
    const template = siloTemplateName(latestVersion('tenant'), t.config.appDbUser);
    await waitFor(
      () => ownerQuery<{ ok: boolean }>(`SELECT NOT datallowconn AS ok FROM pg_database WHERE datname = $1`, [template]),
      (rows) => rows[0]?.ok === true,
      20_000,
      100,
    );
    const slug = uniqueSlug('tpl-copy');
    const res = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'Copy inc', tier: 'silo' }).expect(201);
    const [created] = await ownerQuery<{ created_at: Date }>(`SELECT created_at FROM control.tenants WHERE id = $1`, [res.body.id]);
    const ledger = await query<{ applied_at: Date }>(urlFor(`strata_t_${slug.replace(/-/g, '_')}`), `SELECT applied_at FROM shared.strata_migrations`);
    // Every migration was applied before this tenant existed: to the template, and copied with it.
    expect(ledger.length).toBeGreaterThan(0);
    expect(ledger.filter((m) => m.applied_at >= created.created_at)).toEqual([]);
    // A tenant's home, and only it, carries this onboarding's mark; the template is not a tenant's.
    const [mark] = await ownerQuery<{ mark: string }>(
      `SELECT shobj_description(oid, 'pg_database') AS mark FROM pg_database WHERE datname = $1`,
      [`strata_t_${slug.replace(/-/g, '_')}`],
    );
    expect(mark.mark).toBe(`strata:onboarding:${res.body.id}`);
  });

  it('onboards bridge tenants into pre-migrated spare schemas refilled in the background, renamed with their mark, RLS and grants intact', async () => {
    const spares = () => ownerQuery<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'strata\\_spare\\_%' ORDER BY nspname`);
    // What a refill that crashed mid-build leaves behind: the next refill (under its lock) drops it.
    await ownerQuery(`CREATE SCHEMA strata_sparebuild_leftover`);
    // The first bridge onboarding of an instance finds none and leaves BRIDGE_SPARE_SCHEMAS (2) behind it.
    await t.http().post('/admin/tenants').set(admin()).send({ slug: uniqueSlug('spare-first'), name: 'First inc', tier: 'bridge' }).expect(201);
    const ready = await waitFor(spares, (rows) => rows.length === 2, 20_000, 100);
    const slug = uniqueSlug('spare-taken');
    const schema = `t_${slug.replace(/-/g, '_')}`;
    const res = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'Spare inc', tier: 'bridge' }).expect(201);
    const [created] = await ownerQuery<{ created_at: Date }>(`SELECT created_at FROM control.tenants WHERE id = $1`, [res.body.id]);
    // One of the ready spares became the tenant's schema: migrated before the tenant existed.
    const ledger = await ownerQuery<{ applied_at: Date }>(`SELECT applied_at FROM "${schema}".strata_migrations`);
    expect(ledger.length).toBeGreaterThan(0);
    expect(ledger.filter((m) => m.applied_at >= created.created_at)).toEqual([]);
    expect((await spares()).map((r) => r.nspname)).not.toEqual(ready.map((r) => r.nspname));
    const [mark] = await ownerQuery<{ mark: string }>(`SELECT obj_description(oid, 'pg_namespace') AS mark FROM pg_namespace WHERE nspname = $1`, [schema]);
    expect(mark.mark).toBe(`strata:onboarding:${res.body.id}`);
    // It serves like any bridge home: the owner writes and reads its own rows through the app role under FORCE RLS.
    await t.http().post(`/admin/tenants/${res.body.id}/users`).set(admin()).send({ email: `owner@${slug}.test`, password: PASSWORD, role: 'owner' }).expect(201);
    const login = await t.http().post('/auth/login').set('X-Tenant', slug).send({ email: `owner@${slug}.test`, password: PASSWORD }).expect(200);
    const as = { 'X-Tenant': slug, authorization: `Bearer ${login.body.access_token}` };
    await t.http().post('/projects').set(as).send({ name: 'in a spare' }).expect(201);
    expect((await t.http().get('/projects').set(as).expect(200)).body.items.map((p: { name: string }) => p.name)).toContain('in a spare');
    const [rls] = await ownerQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'strata_migrations' AND NOT (c.relrowsecurity AND c.relforcerowsecurity)`,
      [schema],
    );
    expect(rls.n).toBe(0);
    // The policies' WITH CHECK pinned the spare's name; the rename re-pinned every one to the tenant's schema.
    const checks = await ownerQuery<{ check: string }>(
      `SELECT pg_get_expr(p.polwithcheck, p.polrelid) AS check FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`,
      [schema],
    );
    expect(checks.length).toBeGreaterThan(5);
    expect(checks.filter((c) => !c.check.includes(`'${schema}'`))).toEqual([]);
    // And the spares come back to two; no half-built one is left.
    await waitFor(spares, (rows) => rows.length === 2, 20_000, 100);
    expect(await ownerQuery(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'strata\\_sparebuild\\_%'`)).toEqual([]);
  });

  it('ends failed with the step error after the retries, removes the home it created, and never serves the tenant', async () => {
    const slug = uniqueSlug('doomed');
    let attempts = 0;
    hooks.beforeStep = (name) => {
      if (name === 'seed_defaults') {
        attempts++;
        throw new Error('settings store unavailable');
      }
    };
    const res = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'Doomed inc', tier: 'bridge' }).expect(503);
    expect(res.body.error).toBe('provisioning_failed');
    expect(attempts).toBe(t.config.onboardingMaxAttempts);

    const [created] = await ownerQuery<{ id: string }>(`SELECT id FROM control.tenants WHERE slug = $1`, [slug]);
    const failed = await tenant(created.id);
    expect(failed.body.status).toBe('failed');
    expect(failed.body.error).toBe('seed_defaults: settings store unavailable');
    expect(failed.body.steps.find((s: { name: string }) => s.name === 'seed_defaults')).toEqual({
      name: 'seed_defaults',
      state: 'failed',
      attempts: t.config.onboardingMaxAttempts,
      error: 'settings store unavailable',
    });
    const [schema] = await ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1`, [`t_${slug.replace(/-/g, '_')}`]);
    expect(schema.n).toBe(0);

    // A failed tenant is never reachable, and operators cannot switch it on.
    const login = await t.http().post('/auth/login').set('X-Tenant', slug).send({ email: `owner@${slug}.test`, password: PASSWORD }).expect(404);
    expect(login.body.error).toBe('tenant_not_found');
    await t.http().post(`/admin/tenants/${created.id}/activate`).set(admin()).expect(409);
    // Nor does the fleet runner bring its home back by migrating it.
    const c = new Client({ connectionString: t.db.ownerUrl });
    await c.connect();
    try {
      expect((await listFleetTargets(c)).map((target) => target.key)).not.toContain(`bridge:${slug}`);
    } finally {
      await c.end();
    }
  });

  it('refuses a bridge slug whose schema already exists (409) and leaves the schema and its rows as they were', async () => {
    const slug = uniqueSlug('orphan-bridge');
    const schema = `t_${slug.replace(/-/g, '_')}`;
    await ownerQuery(`CREATE SCHEMA ${escapeIdentifier(schema)}; CREATE TABLE ${escapeIdentifier(schema)}.keep (id int); INSERT INTO ${escapeIdentifier(schema)}.keep VALUES (1), (2)`);
    try {
      const res = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'Orphan inc', tier: 'bridge' }).expect(409);
      expect(res.body.error).toBe('tenant_home_exists');
      const [kept] = await ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${escapeIdentifier(schema)}.keep`);
      expect(kept.n).toBe(2);
      const [created] = await ownerQuery<{ id: string; status: string }>(`SELECT id, status FROM control.tenants WHERE slug = $1`, [slug]);
      expect(created.status).toBe('failed');
      const view = await tenant(created.id);
      expect(view.body.steps[0]).toMatchObject({ name: 'create_home', state: 'failed', attempts: 1 });
    } finally {
      await ownerQuery(`DROP SCHEMA IF EXISTS ${escapeIdentifier(schema)} CASCADE`);
    }
  });

  it('refuses a silo slug whose database already exists (409) and leaves the database and its rows as they were', async () => {
    const slug = uniqueSlug('orphan-silo');
    const database = `strata_t_${slug.replace(/-/g, '_')}`;
    await query(runInfo().adminUrl, `CREATE DATABASE ${escapeIdentifier(database)}`);
    try {
      await query(urlFor(database), `CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2), (3)`);
      const res = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'Orphan inc', tier: 'silo' }).expect(409);
      expect(res.body.error).toBe('tenant_home_exists');
      const [kept] = await query<{ n: number }>(urlFor(database), `SELECT count(*)::int AS n FROM keep`);
      expect(kept.n).toBe(3);
    } finally {
      await query(runInfo().adminUrl, `DROP DATABASE IF EXISTS ${escapeIdentifier(database)} WITH (FORCE)`);
    }
  });

  it('answers ?async=true with 202 at once; an executor polling in another process makes it active', async () => {
    const slug = uniqueSlug('async');
    const accepted = await t.http().post('/admin/tenants?async=true').set(admin()).send({ slug, name: 'Async inc', tier: 'pool' }).expect(202);
    expect(accepted.body).toMatchObject({ slug, status: 'provisioning' });
    expect(accepted.body.steps.every((s: { state: string }) => s.state === 'pending')).toBe(true);
    const worker = await createApp({ ...t.config, onboardingExecutor: true }, { logger: ['error', 'fatal'] });
    await worker.init();
    try {
      const done = await waitFor(() => tenant(accepted.body.id), (r) => r.body.status === 'active', 10_000, 50);
      expect(done.body.steps.every((s: { state: string }) => s.state === 'done')).toBe(true);
    } finally {
      await worker.close();
    }
  });

  it('rejects an invalid ?async value with 400 like every other validation error', async () => {
    const res = await t.http().post('/admin/tenants?async=maybe').set(admin()).send({ slug: uniqueSlug('bad'), name: 'x', tier: 'pool' }).expect(400);
    expect(res.body.error).toBe('validation_failed');
  });

  describe('offboarding a failed tenant (DELETE /admin/tenants/:id)', () => {
    const homeName = (tier: Tier, slug: string) => (tier === 'silo' ? `strata_t_${slug.replace(/-/g, '_')}` : `t_${slug.replace(/-/g, '_')}`);
    const homeExists = async (tier: Tier, slug: string) => {
      const sql = tier === 'silo' ? `SELECT 1 FROM pg_database WHERE datname = $1` : `SELECT 1 FROM pg_namespace WHERE nspname = $1`;
      return (await ownerQuery(sql, [homeName(tier, slug)])).length === 1;
    };
    const waitDeleted = async (id: string) => {
      const last = await waitFor(
        async () => (await t.http().get(`/admin/tenants/${id}/deletion-report`).set(admin()).expect(200)).body as DeletionReportView,
        (r) => r.status === 'deleted',
        60_000,
        100,
      );
      if (last.status !== 'deleted') throw new Error(`tenant ${id} still deleting after 60 s: ${JSON.stringify(last)}`);
      return last;
    };
    const homeEntry = (r: DeletionReportView) => r.stores.find((s) => s.step === 'home')!;
    const slugHolders = async (slug: string) => ownerQuery(`SELECT id FROM control.tenants WHERE slug = $1`, [slug]);

    it.each<Tier>(['bridge', 'silo'])('drops the half-made %s home its own onboarding marked, and frees the slug', async (tier) => {
      const slug = uniqueSlug(`failed-own-${tier}`);
      hooks.beforeStep = (name) => {
        if (name === 'seed_defaults') throw new OnboardingExecutorKilled();
      };
      const accepted = await t.http().post('/admin/tenants?async=true').set(admin()).send({ slug, name: 'Half inc', tier }).expect(202);
      const id: string = accepted.body.id;
      expect(await t.app.get(OnboardingExecutor).runOne(id)).toBe('abandoned');
      delete hooks.beforeStep;
      // Still provisioning: not deletable yet.
      expect((await t.http().delete(`/admin/tenants/${id}`).set(admin()).expect(409)).body.error).toBe('tenant_state_conflict');
      // What a failure leaves when its cleanup could not reach the server (logged, not retried): the
      // tenant failed, its home created, marked and migrated by its own onboarding, still there.
      await ownerQuery(
        `WITH o AS (UPDATE control.tenant_onboardings SET finished_at = now(), error = 'seed_defaults: server unreachable', lease_owner = NULL, lease_until = NULL
                     WHERE tenant_id = $1 RETURNING tenant_id)
         UPDATE control.tenants SET status = 'failed' FROM o WHERE id = o.tenant_id`,
        [id],
      );
      expect((await tenant(id)).body.status).toBe('failed');
      expect(await homeExists(tier, slug)).toBe(true);

      const started = await t.http().delete(`/admin/tenants/${id}`).set(admin()).expect(202);
      expect(started.body).toMatchObject({ tenantId: id, slug, tier, status: 'deleting' });
      const done = await waitDeleted(id);
      expect(homeEntry(done).removed).toEqual({ [tier === 'silo' ? 'databases' : 'schemas']: 1 });
      expect(await homeExists(tier, slug)).toBe(false);
      expect(await slugHolders(slug)).toEqual([]);
      expect((await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'Again inc', tier }).expect(201)).body.status).toBe('active');
    });

    it('refuses (409) a failed tenant whose onboarding record is gone: nothing tells its own home from another then', async () => {
      const slug = uniqueSlug('failed-norecord');
      const res = await t.http().post('/admin/tenants?async=true').set(admin()).send({ slug, name: 'Bare inc', tier: 'bridge' }).expect(202);
      await ownerQuery(
        `WITH o AS (DELETE FROM control.tenant_onboardings WHERE tenant_id = $1 RETURNING tenant_id)
         UPDATE control.tenants SET status = 'failed' FROM o WHERE id = o.tenant_id`,
        [res.body.id],
      );
      const refused = await t.http().delete(`/admin/tenants/${res.body.id}`).set(admin()).expect(409);
      expect(refused.body.error).toBe('tenant_state_conflict');
      expect((await ownerQuery(`SELECT status FROM control.tenants WHERE id = $1`, [res.body.id]))[0].status).toBe('failed');
    });

    it.each<Tier>(['bridge', 'silo'])('leaves the foreign %s home its slug collided with, rows and all, and frees the slug', async (tier) => {
      const slug = uniqueSlug(`failed-foreign-${tier}`);
      const name = homeName(tier, slug);
      const keep = async () => {
        if (tier === 'silo') return (await query<{ n: number }>(urlFor(name), `SELECT count(*)::int AS n FROM keep`))[0].n;
        return (await ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${escapeIdentifier(name)}.keep`))[0].n;
      };
      if (tier === 'silo') {
        await query(runInfo().adminUrl, `CREATE DATABASE ${escapeIdentifier(name)}`);
        await query(urlFor(name), `CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2), (3)`);
      } else {
        await ownerQuery(`CREATE SCHEMA ${escapeIdentifier(name)}; CREATE TABLE ${escapeIdentifier(name)}.keep (id int); INSERT INTO ${escapeIdentifier(name)}.keep VALUES (1), (2), (3)`);
      }
      try {
        expect((await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'Collide inc', tier }).expect(409)).body.error).toBe('tenant_home_exists');
        const [failed] = await slugHolders(slug);
        expect((await tenant(failed.id as string)).body.status).toBe('failed');

        await t.http().delete(`/admin/tenants/${failed.id}`).set(admin()).expect(202);
        const done = await waitDeleted(failed.id as string);
        expect(homeEntry(done).removed).toEqual({});
        expect(homeEntry(done).details).toMatchObject({ onboarding: 'failed', kept: expect.stringContaining('left untouched') });
        expect(await homeExists(tier, slug)).toBe(true);
        expect(await keep()).toBe(3);
        expect(await slugHolders(slug)).toEqual([]);
      } finally {
        if (tier === 'silo') await query(runInfo().adminUrl, `DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
        else await ownerQuery(`DROP SCHEMA IF EXISTS ${escapeIdentifier(name)} CASCADE`);
      }
    });
  });

  /** A plan made for one test, whose default tier is `tier`. */
  const planOnTier = async (tier: Tier): Promise<string> => {
    const id = uniqueSlug(`on-${tier}`);
    await ownerQuery(`INSERT INTO control.plans (id, name, default_tier) VALUES ($1, $1, $2)`, [id, tier]);
    return id;
  };

  it("a tenant created without a tier lands on its plan's default tier, and on the default plan's without a plan", async () => {
    const onBridge = await planOnTier('bridge');
    const created = async (body: Record<string, unknown>) =>
      (await t.http().post('/admin/tenants').set(admin()).send({ slug: uniqueSlug('deftier'), name: 'Default tier inc', ...body }).expect(201)).body;
    expect(await created({ plan: onBridge })).toMatchObject({ tier: 'bridge', plan: onBridge, status: 'active' });
    expect(await created({ plan: 'enterprise' })).toMatchObject({ tier: 'silo', plan: 'enterprise', status: 'active' });
    expect(await created({})).toMatchObject({ tier: 'pool', plan: 'standard', status: 'active' });
    // A tier named in the request wins over the plan's.
    expect(await created({ plan: onBridge, tier: 'pool' })).toMatchObject({ tier: 'pool', plan: onBridge });
    const unknown = await t.http().post('/admin/tenants').set(admin()).send({ slug: uniqueSlug('noplan'), name: 'x', plan: 'no-such-plan' }).expect(400);
    expect(unknown.body.error).toBe('invalid_plan');
  });

  describe('self-service signup', () => {
    it("creates the tenant on its plan's default tier", async () => {
      const onBridge = await planOnTier('bridge');
      const slug = uniqueSlug('signup-tier');
      const res = await t.http().post('/signup').send({ company: 'Tiered', slug, email: `founder@${slug}.test`, password: PASSWORD, plan: onBridge }).expect(201);
      expect((await tenant(res.body.tenantId)).body).toMatchObject({ slug, tier: 'bridge', plan: onBridge, status: 'active' });
    });

    it('creates an active tenant whose owner logs in; then refuses a taken slug, bad input, and past the limit per address', async () => {
      const slug = uniqueSlug('signup');
      const email = `founder@${slug}.test`;
      const res = await t.http().post('/signup').send({ company: 'Initech', slug, email, password: PASSWORD, plan: 'free' }).expect(201);
      expect(res.body).toEqual({ tenantId: expect.any(String), slug, status: 'active', poll: `/signup/${res.body.tenantId}`, login: `/t/${slug}/auth/login` });
      await t.http().post('/auth/login').set('X-Tenant', slug).send({ email, password: PASSWORD }).expect(200);
      const polled = await t.http().get(res.body.poll).expect(200);
      expect(polled.body.status).toBe('active');
      expect((await tenant(res.body.tenantId)).body).toMatchObject({ tier: 'pool', plan: 'free' });

      const taken = await t.http().post('/signup').send({ company: 'Other', slug, email: `x@${slug}.test`, password: PASSWORD }).expect(409);
      expect(taken.body.error).toBe('slug_taken');
      const invalid = await t.http().post('/signup').send({ company: 'Bad', slug: 'Not A Slug', email: 'nope', password: 'short' }).expect(400);
      expect(invalid.body.error).toBe('validation_failed');
      // Plans are data: an unknown one is refused before anything is made.
      const noPlan = await t.http().post('/signup').send({ company: 'Gold', slug: uniqueSlug('gold'), email: 'gold@example.test', password: PASSWORD, plan: 'platinum' }).expect(400);
      expect(noPlan.body.error).toBe('invalid_plan');
      // An existing user becomes the owner of a second tenant only with their own password.
      const second = uniqueSlug('signup-2');
      const stranger = await t.http().post('/signup').send({ company: 'Two', slug: second, email, password: 'not-the-password' }).expect(409);
      expect(stranger.body.error).toBe('email_taken');
      await t.http().post('/signup').send({ company: 'Two', slug: second, email, password: PASSWORD }).expect(201);
      await t.http().post('/auth/login').set('X-Tenant', second).send({ email, password: PASSWORD }).expect(200);
      // SIGNUP_RATE_LIMIT=7 for this file: the default-tier signup test and the six above used the address's allowance.
      const limited = await t.http().post('/signup').send({ company: 'Late', slug: uniqueSlug('late'), email: 'late@example.test', password: PASSWORD }).expect(429);
      expect(limited.body.error).toBe('signup_rate_limited');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    });

    it('is not there (404) when SIGNUP_ENABLED is off', async () => {
      const res = await request(other.getHttpServer())
        .post('/signup')
        .send({ company: 'Off', slug: uniqueSlug('off'), email: 'off@example.test', password: PASSWORD })
        .expect(404);
      expect(res.body.error).toBe('signup_not_found');
    });
  });

  describe('signup retried after a timeout (same slug, email and password)', () => {
    // Every signup here counts against SIGNUP_RATE_LIMIT for this address: start each test with a fresh allowance.
    beforeEach(() => dropRedisPrefix(t.config.redisUrl, `strata:rl:signup:${t.db.name}`));

    it('counts the first signup an instance takes after it starts in Redis, where every instance sees it', async () => {
      const fresh = await createApp({ ...t.config, onboardingExecutor: false, signupEnabled: true }, { logger: ['error', 'fatal'] });
      await fresh.init();
      try {
        const slug = uniqueSlug('first-counted');
        await request(fresh.getHttpServer()).post('/signup').send({ company: 'First inc', slug, email: `founder@${slug}.test`, password: PASSWORD }).expect(201);
        const redis = new Redis(t.config.redisUrl!);
        try {
          const keys = await redis.keys(`strata:rl:signup:${t.db.name}:*`);
          expect(keys).toHaveLength(1);
          expect(await redis.get(keys[0])).toBe('1');
        } finally {
          await redis.quit();
        }
      } finally {
        await fresh.close();
      }
    });

    it("answers the first signup again (201, the same tenant); another owner for the slug still gets 409 slug_taken", async () => {
      const slug = uniqueSlug('retry');
      const body = { company: 'Retry inc', slug, email: `Founder@${slug}.test`, password: PASSWORD };
      const first = await t.http().post('/signup').send(body).expect(201);
      const again = await t.http().post('/signup').send(body).expect(201);
      expect(again.body).toEqual(first.body);
      expect((await ownerQuery(`SELECT id FROM control.tenants WHERE slug = $1`, [slug])).length).toBe(1);

      const stranger = await t.http().post('/signup').send({ ...body, email: `stranger@${slug}.test` }).expect(409);
      expect(stranger.body.error).toBe('slug_taken');
      // The owner exists by now: a wrong password for that email is refused before the slug is looked at.
      expect((await t.http().post('/signup').send({ ...body, password: 'not-the-password' }).expect(409)).body.error).toBe('email_taken');
    });

    it('answers a retry while the first is still provisioning with 202 and the same tenant; a guessed password gets slug_taken', async () => {
      const slug = uniqueSlug('retry-slow');
      const body = { company: 'Slow inc', slug, email: `founder@${slug}.test`, password: PASSWORD };
      hooks.beforeStep = (name) => {
        if (name === 'seed_defaults') throw new OnboardingExecutorKilled();
      };
      const first = await t.http().post('/signup').send(body).expect(202);
      expect(first.body.status).toBe('provisioning');
      const again = await t.http().post('/signup').send(body).expect(202);
      expect(again.body).toEqual(first.body);
      expect(again.headers.location).toBe(first.body.poll);
      // No user exists yet: only the hash the first signup stored can tell the owner from someone who knows the email.
      expect((await t.http().post('/signup').send({ ...body, password: 'guessed-password' }).expect(409)).body.error).toBe('slug_taken');

      delete hooks.beforeStep;
      await abandonLease(first.body.tenantId);
      const done = await t.http().post('/signup').send(body).expect(201);
      expect(done.body).toEqual({ ...first.body, status: 'active' });
      await t.http().post('/auth/login').set('X-Tenant', slug).send({ email: body.email, password: PASSWORD }).expect(200);
    });
  });
});
