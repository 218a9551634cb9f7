import { connect, type AddressInfo } from 'node:net';
import { MAX_JSON_MEMBERS } from '#strata/common';
import { as } from '../support/cross-tenant';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

/**
 * What the route fuzz test (route-fuzz.e2e-spec.ts) found, each pinned as a plain case. (It also
 * found JSON arrays sent for a DTO and unknown-key floods answered with one message per element or
 * key; main fixed those in parallel: body_not_object, at most 20 fields listed, validation.spec.ts.)
 */
describe('malformed input found by the route fuzzer', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  let port: number;

  beforeAll(async () => {
    t = await startTestApp();
    acme = await t.onboard('malformed', 'pool');
    await t.app.listen(0, '127.0.0.1');
    port = (t.app.getHttpServer().address() as AddressInfo).port;
  });
  afterAll(() => t.close());

  /** Raw bytes on a fresh connection; everything the server writes before it closes. */
  const exchange = (raw: Buffer) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(raw));
      let text = '';
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });

  const postProject = (body: string) => t.http().post('/projects').set(as(acme)).set('content-type', 'application/json').send(body);

  it('answers a URL holding a raw non-ASCII byte with the JSON 400 malformed_request, not a bare status line', async () => {
    const answer = await exchange(Buffer.from(`GET /projects/\xe9 HTTP/1.1\r\nHost: x\r\nX-Tenant: ${acme.slug}\r\n\r\n`, 'latin1'));
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ statusCode: 400, error: 'malformed_request', message: expect.any(String) });
  });

  it(`answers an object of more than ${MAX_JSON_MEMBERS} keys with 400 json_too_wide before any DTO code runs`, async () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `"k${i}":1`).join(',');
    const res = await postProject(`{"name":"x",${keys(20_000)}}`).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'json_too_wide', message: expect.stringContaining(String(MAX_JSON_MEMBERS)) });
  });

  it('answers a body framed both by Content-Length and chunked with the JSON 400 malformed_request, and creates nothing', async () => {
    const body = '{"name":"smuggled"}';
    const answer = await exchange(
      Buffer.from(
        `POST /projects HTTP/1.1\r\nHost: x\r\nX-Tenant: ${acme.slug}\r\nAuthorization: Bearer ${acme.token}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
      ),
    );
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ statusCode: 400, error: 'malformed_request', message: expect.any(String) });
    const list = await t.http().get('/projects?q=smuggled').set(as(acme)).expect(200);
    expect(list.body.items).toEqual([]);
  });
});
