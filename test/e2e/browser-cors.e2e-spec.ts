import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, serveStaticPages, type StaticSite } from '../support/browser';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { overrideEnv } from '../support/webhook-receiver';

jest.setTimeout(60_000);

/**
 * The browser app: logs in, lists projects and uploads a file through CORS with fetch, as a real
 * frontend on another origin does, and writes what happened into window.__results (and the page).
 * Its parameters come in the URL hash, so the same page serves the allowed and the refused origin.
 */
const APP_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>strata browser app</title></head>
<body><pre id="out">running</pre>
<script type="module">
  const { api, tenant, email, password } = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  const results = {};
  const step = async (name, fn) => {
    try {
      results[name] = { ok: true, value: await fn() };
    } catch (err) {
      // A CORS refusal: fetch rejects with a TypeError and the script never sees the answer.
      results[name] = { ok: false, error: String(err && err.name) + ': ' + String(err && err.message) };
    }
  };
  let token;
  await step('login', async () => {
    const res = await fetch(api + '/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-tenant': tenant },
      body: JSON.stringify({ email, password }),
    });
    const body = await res.json();
    token = body.access_token;
    return { status: res.status, hasToken: typeof token === 'string' && token.length > 20, requestId: res.headers.get('x-request-id') };
  });
  const auth = () => ({ authorization: 'Bearer ' + token, 'x-tenant': tenant });
  await step('createProject', async () => {
    const res = await fetch(api + '/projects', { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'from the browser' }) });
    return { status: res.status, body: await res.json() };
  });
  await step('listProjects', async () => {
    const res = await fetch(api + '/projects?limit=10', { headers: auth() });
    const body = await res.json();
    return { status: res.status, names: body.items.map((p) => p.name) };
  });
  await step('upload', async () => {
    const form = new FormData();
    form.append('file', new Blob(['hello from chromium'], { type: 'text/plain' }), 'browser.txt');
    // No content-type header: the browser sets multipart/form-data with its boundary.
    const res = await fetch(api + '/files', { method: 'POST', headers: auth(), body: form });
    return { status: res.status, body: await res.json() };
  });
  window.__results = results;
  document.getElementById('out').textContent = JSON.stringify(results, null, 2);
  window.__done = true;
</script></body></html>`;

interface StepResult<T> {
  ok: boolean;
  value?: T;
  error?: string;
}

describe('a real browser (Debian Chromium) using the API through CORS from another origin', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  let browser: Browser;
  let allowed: StaticSite;
  let refused: StaticSite;
  let api: string;
  let filesRoot: string;
  let restoreEnv: () => void = () => undefined;

  beforeAll(async () => {
    // Fails (does not skip) with the install hint when Chromium is missing.
    browser = await launchChromium();
    // Two origins: the same page on two ports; only the first one is in CORS_ORIGINS.
    allowed = await serveStaticPages({ '/app.html': APP_PAGE });
    refused = await serveStaticPages({ '/app.html': APP_PAGE });
    filesRoot = mkdtempSync(join(tmpdir(), 'strata-browser-files-'));
    restoreEnv = overrideEnv({ FILES_ROOT: filesRoot });
    t = await startTestApp({ corsOrigins: [allowed.origin] });
    // A real socket this time: the browser connects to it, supertest is not in the path.
    await t.app.listen(0, '127.0.0.1');
    api = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
    acme = await t.onboard('browser', 'pool');
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await allowed?.close();
    await refused?.close();
    restoreEnv();
    if (filesRoot) rmSync(filesRoot, { recursive: true, force: true });
  });

  /** Opens the app page of `site` in a fresh context and returns what its script reported. */
  async function runApp(site: StaticSite): Promise<Record<string, StepResult<Record<string, unknown>>>> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const params = encodeURIComponent(JSON.stringify({ api, tenant: acme.slug, email: acme.email, password: acme.password }));
      await page.goto(`${site.origin}/app.html#${params}`);
      // Strings, evaluated in the page: this file is compiled without the DOM library.
      await page.waitForFunction('window.__done === true', undefined, { timeout: 20_000 });
      return (await page.evaluate('window.__results')) as Record<string, StepResult<Record<string, unknown>>>;
    } finally {
      await context.close();
    }
  }

  it('logs in, creates and lists projects and uploads a file with FormData from an allowed origin, reading every answer', async () => {
    const results = await runApp(allowed);
    expect(results.login).toEqual({ ok: true, value: { status: 200, hasToken: true, requestId: expect.any(String) } });
    expect(results.createProject).toMatchObject({ ok: true, value: { status: 201, body: { name: 'from the browser' } } });
    expect(results.listProjects).toEqual({ ok: true, value: { status: 200, names: ['from the browser'] } });
    expect(results.upload).toMatchObject({
      ok: true,
      value: { status: 201, body: { id: expect.any(String), name: 'browser.txt', size: 'hello from chromium'.length } },
    });
    // The server really has the file the browser sent.
    const uploaded = results.upload.value!.body as { id: string };
    const content = await t.http().get(`/files/${uploaded.id}/content`).set('X-Tenant', acme.slug).set('authorization', `Bearer ${acme.token}`).expect(200);
    expect(content.text).toBe('hello from chromium');
  });

  it('lets a page on an origin not in CORS_ORIGINS read nothing: every fetch rejects in the browser', async () => {
    const results = await runApp(refused);
    for (const name of ['login', 'createProject', 'listProjects', 'upload']) {
      expect({ name, ...results[name] }).toEqual({ name, ok: false, error: expect.stringMatching(/^TypeError: /) });
    }
  });
});
