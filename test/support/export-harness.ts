import { PassThrough, Readable } from 'node:stream';
import { readArchive, TERMINAL_EXPORT_STATES, type ExportManifest, type TenantExportView } from '#strata/exports';
import { as } from './cross-tenant';
import { binary, uploadFile } from './files-fixture';
import { callApi } from './move-harness';
import type { OnboardedTenant, TestApp } from './test-app';

const admin = (t: TestApp) => ({ authorization: `Bearer ${t.adminToken}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a tenant was given to export: ids of each kind of row, and the bytes of its files. */
export interface TenantContent {
  projectIds: string[];
  taskIds: string[];
  invoiceIds: string[];
  webhookIds: string[];
  files: Array<{ id: string; bytes: Buffer }>;
}

/**
 * Rows in every table a tenant writes through the API (projects, tasks, invoices, webhooks with
 * their secrets, idempotency keys, files with their bytes), distinct per tenant so a mix-up shows.
 */
export async function fillTenant(t: TestApp, who: OnboardedTenant): Promise<TenantContent> {
  const c: TenantContent = { projectIds: [], taskIds: [], invoiceIds: [], webhookIds: [], files: [] };
  for (let i = 0; i < 3; i++) {
    const p = await t.http().post('/projects').set(as(who)).set('Idempotency-Key', `${who.slug}-p${i}`).send({ name: `${who.slug} project ${i}`, description: `ünïcødé "quoted"\nline ${i}` }).expect(201);
    c.projectIds.push(p.body.id);
    const task = await t.http().post(`/projects/${p.body.id}/tasks`).set(as(who)).send({ title: `task ${i} of ${who.slug}` }).expect(201);
    c.taskIds.push(task.body.id);
  }
  for (let i = 0; i < 2; i++) {
    const inv = await t.http().post('/invoices').set(as(who)).send({ number: `${who.slug}-${i}`, amount: 1000 + i, currency: 'EUR' }).expect(201);
    c.invoiceIds.push(inv.body.id);
  }
  const hook = await t.http().post('/webhooks').set(as(who)).send({ url: 'https://example.com/hooks/strata' }).expect(201);
  c.webhookIds.push(hook.body.id);
  for (const [name, bytes] of [
    ['notes.txt', Buffer.from(`notes of ${who.slug}\n`)],
    ['blob.bin', Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256))],
  ] as const) {
    const f = await uploadFile(t, who, bytes, name).expect(201);
    c.files.push({ id: f.body.id, bytes });
  }
  return c;
}

/** POST /admin/tenants/:id/exports, then GET /admin/exports/:id until it ends. */
export async function exportAndWait(t: TestApp, tenantId: string, timeoutMs = 30_000): Promise<TenantExportView> {
  const res = await callApi<TenantExportView>(t, 'POST', `/admin/tenants/${tenantId}/exports`, { headers: admin(t) });
  if (res.status !== 202) throw new Error(`POST /admin/tenants/${tenantId}/exports answered ${res.status} ${JSON.stringify(res.body)}`);
  return waitForExport(t, res.body.id, timeoutMs);
}

export async function waitForExport(t: TestApp, exportId: string, timeoutMs = 30_000): Promise<TenantExportView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await callApi<TenantExportView>(t, 'GET', `/admin/exports/${exportId}`, { headers: admin(t) });
    if (res.status !== 200) throw new Error(`GET /admin/exports/${exportId} answered ${res.status}`);
    if ((TERMINAL_EXPORT_STATES as readonly string[]).includes(res.body.state)) return res.body;
    if (Date.now() > deadline) throw new Error(`export ${exportId} still ${res.body.state} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** GET /admin/exports/:id/archive as bytes. */
export async function downloadArchive(t: TestApp, exportId: string): Promise<Buffer> {
  const res = await t.http().get(`/admin/exports/${exportId}/archive`).set(admin(t)).buffer(true).parse(binary).expect(200);
  return res.body as Buffer;
}

/** The archive's manifest and every entry's bytes, read (and verified) by the lib's own reader. */
export async function openArchive(archive: Buffer): Promise<{ manifest: ExportManifest; entries: Map<string, Buffer> }> {
  const entries = new Map<string, Buffer>();
  const manifest = await readArchive(Readable.from([archive]), async (path, body) => {
    const chunks: Buffer[] = [];
    for await (const c of body.pipe(new PassThrough())) chunks.push(c as Buffer);
    entries.set(path, Buffer.concat(chunks));
  });
  return { manifest, entries };
}

/** A manifest without what legitimately differs between two exports of the same content (ids, tenant, time, tier). */
export const contentOf = (m: ExportManifest) => ({ schemaVersion: m.schemaVersion, tables: m.tables, sequences: m.sequences, files: m.files.map(({ contentType: _, ...f }) => f) });

/** Packs `entries` behind `manifest` as the lib does (manifest first), for tests that forge archives. */
export async function packArchive(manifest: unknown, entries: Map<string, Buffer>): Promise<Buffer> {
  const { pack } = await import('tar-stream');
  const { createGzip } = await import('node:zlib');
  const tar = pack();
  const gz = tar.pipe(createGzip());
  const out: Buffer[] = [];
  const collected = new Promise<Buffer>((done, fail) => {
    gz.on('data', (c: Buffer) => out.push(c));
    gz.on('end', () => done(Buffer.concat(out)));
    gz.on('error', fail);
  });
  tar.entry({ name: 'manifest.json' }, Buffer.from(JSON.stringify(manifest)));
  for (const [name, body] of entries) tar.entry({ name }, body);
  tar.finalize();
  return collected;
}
