import { Writable } from 'node:stream';
import pino from 'pino';
import { LOGGED_REQUEST_HEADERS, REDACTED_PATHS, serializeRequest } from './log.config';

describe('serializeRequest', () => {
  const req = {
    id: 'rq-1',
    method: 'GET',
    url: '/projects?email=ada@acme.test&limit=5',
    query: { email: 'ada@acme.test', limit: '5' },
    params: { splat: ['projects'] },
    headers: {
      host: 'acme.example.test',
      authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.secret.sig',
      cookie: 'sid=secret',
      'x-auth-token': 'partner-secret',
      'x-tenant': 'acme',
      'user-agent': 'curl/8',
      'content-type': 'application/json',
      'content-length': '12',
    },
    remoteAddress: '127.0.0.1',
    remotePort: 51000,
  };

  it('keeps only the allowlisted headers, so a credential in an unlisted header never reaches a line', () => {
    const out = serializeRequest(req);
    expect(out.headers).toEqual({ 'user-agent': 'curl/8', 'content-type': 'application/json', 'content-length': '12' });
    expect(Object.keys(out.headers as object)).toEqual([...LOGGED_REQUEST_HEADERS]);
    expect(JSON.stringify(out)).not.toMatch(/secret|Bearer|acme\.example/);
  });

  it('drops the query string and the query and params objects', () => {
    const out = serializeRequest(req);
    expect(out).toEqual({ id: 'rq-1', method: 'GET', url: '/projects', headers: expect.any(Object), remoteAddress: '127.0.0.1', remotePort: 51000 });
    expect(JSON.stringify(out)).not.toContain('ada@acme.test');
  });

  it('copes with a request without headers', () => {
    expect(serializeRequest({ method: 'GET', url: '/health/live' }).headers).toEqual({});
  });

  it('still redacts credentials logged as fields outside the request', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    pino({ redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink).info({ user: { email: 'ada@acme.test', password: 'pw' } }, 'x');
    expect(lines.join('')).not.toMatch(/ada@acme\.test|"pw"/);
  });
});
