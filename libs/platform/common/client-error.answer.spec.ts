import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { answerClientErrorsAsJson } from './client-error.answer';

/** Sends each chunk once the server has answered the one before, and returns everything it writes before closing. */
function exchange(port: number, ...chunks: Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(chunks.shift()!));
    let text = '';
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (chunks.length) socket.write(chunks.shift()!);
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as unknown;

describe('answers to requests Node cannot parse', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((_req, res) => res.end('{}'));
    answerClientErrorsAsJson(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('answers a raw non-ASCII byte in the URL with a JSON 400 malformed_request', async () => {
    const answer = await exchange(port, Buffer.from('GET /projects/\xe9 HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/);
    expect(bodyOf(answer)).toEqual({ statusCode: 400, error: 'malformed_request', message: expect.any(String) });
  });

  it('answers a HEAD request it cannot parse with the headers alone, no body', async () => {
    const answer = await exchange(port, Buffer.from('HEAD /projects/\xe9 HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/);
    expect(answer.endsWith('\r\n\r\n')).toBe(true);
  });

  it('answers headers over the size limit with a JSON 431 headers_too_large', async () => {
    const answer = await exchange(port, Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(answer)).toEqual({ statusCode: 431, error: 'headers_too_large', message: expect.any(String) });
  });

  it('answers a malformed request that follows a served one on a kept-alive connection, and still serves good requests', async () => {
    const answer = await exchange(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from('GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
    expect(answer.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 400']);
    expect(await exchange(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toMatch(/^HTTP\/1\.1 200 /);
  });
});
