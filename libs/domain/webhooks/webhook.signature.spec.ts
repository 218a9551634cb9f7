import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { generateWebhookSecret, InvalidWebhookSecretError, signWebhook, verifyWebhook, type WebhookSignatureHeaders } from './webhook.signature';

const secret = generateWebhookSecret();
const id = 'a3f1c7e2-5b7d-4e0a-9d55-3a6c1e2b9f10';
const body = JSON.stringify({ id, type: 'invoice.created', createdAt: '2026-01-01T00:00:00.000Z', data: { amount: 1999 } });
const now = 1_780_000_000;
const at = new Date(now * 1000);

/** The library reads the clock itself (Date.now), with no option to pass one: the tests set it. */
const clock = (unixSeconds: number) => jest.spyOn(Date, 'now').mockReturnValue(unixSeconds * 1000);

describe('webhook signatures (Standard Webhooks, package standardwebhooks)', () => {
  beforeEach(() => clock(now));
  afterEach(() => jest.restoreAllMocks());

  it('matches the specification\'s test vector', () => {
    const headers = signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', '{"test": 2432232314}', new Date(1614265330 * 1000));
    expect(headers).toEqual({
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  it('signs "<id>.<timestamp>.<body>" with HMAC-SHA256 under the base64-decoded key, in whole seconds', () => {
    const headers = signWebhook(secret, id, body, new Date(now * 1000 + 999));
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update(`${id}.${now}.${body}`).digest('base64');
    expect(headers).toEqual({ 'webhook-id': id, 'webhook-timestamp': String(now), 'webhook-signature': `v1,${expected}` });
  });

  it('verifies its own signature from a string or the raw bytes, with node or fetch headers in any letter case', () => {
    const headers = signWebhook(secret, id, body, at);
    expect(verifyWebhook(body, headers, secret)).toBe(true);
    expect(verifyWebhook(Buffer.from(body), headers, secret)).toBe(true);
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyWebhook(body, { ...upper, 'content-type': 'application/json' }, secret)).toBe(true);
    expect(verifyWebhook(body, new Headers(upper), secret)).toBe(true);
  });

  it('is what the official library accepts as a receiver (and the wrapper accepts what it signs)', () => {
    const headers = signWebhook(secret, id, body, at);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    const signature = new Webhook(secret).sign(id, at, body);
    expect(verifyWebhook(body, { 'webhook-id': id, 'webhook-timestamp': String(now), 'webhook-signature': signature }, secret)).toBe(true);
  });

  it('refuses a tampered body', () => {
    const headers = signWebhook(secret, id, body, at);
    expect(verifyWebhook(body.replace('1999', '9999'), headers, secret)).toBe(false);
    expect(verifyWebhook(`${body} `, headers, secret)).toBe(false);
  });

  it('refuses another secret, such as another endpoint\'s or tenant\'s', () => {
    const headers = signWebhook(secret, id, body, at);
    expect(verifyWebhook(body, headers, generateWebhookSecret())).toBe(false);
  });

  it('refuses another webhook-id than the one signed (a replay under another event id)', () => {
    const headers = signWebhook(secret, id, body, at);
    expect(verifyWebhook(body, { ...headers, 'webhook-id': 'b3f1c7e2-5b7d-4e0a-9d55-3a6c1e2b9f10' }, secret)).toBe(false);
  });

  it('refuses a stale or future timestamp outside the 5-minute tolerance, and a timestamp changed after signing', () => {
    const headers = signWebhook(secret, id, body, at);
    clock(now + 300);
    expect(verifyWebhook(body, headers, secret)).toBe(true);
    clock(now - 300);
    expect(verifyWebhook(body, headers, secret)).toBe(true);
    clock(now + 301);
    expect(verifyWebhook(body, headers, secret)).toBe(false);
    clock(now - 301);
    expect(verifyWebhook(body, headers, secret)).toBe(false);
    clock(now);
    expect(verifyWebhook(body, { ...headers, 'webhook-timestamp': String(now + 10) }, secret)).toBe(false);
  });

  const signed = signWebhook(secret, id, body, at);
  const { 'webhook-signature': validSignature } = signed;
  it.each<[string, Record<string, string | string[] | undefined>]>([
    ['no headers', {}],
    ['no webhook-id', { ...signed, 'webhook-id': undefined }],
    ['no webhook-timestamp', { ...signed, 'webhook-timestamp': undefined }],
    ['no webhook-signature', { ...signed, 'webhook-signature': undefined }],
    ['an empty signature', { ...signed, 'webhook-signature': '' }],
    ['a garbage signature', { ...signed, 'webhook-signature': 'garbage' }],
    ['a zero v1 signature', { ...signed, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}` }],
    ['the right signature under another version', { ...signed, 'webhook-signature': validSignature.replace(/^v1,/, 'v2,') }],
    ['a non-numeric timestamp', { ...signed, 'webhook-timestamp': 'yesterday' }],
    ['a repeated signature header', { ...signed, 'webhook-signature': [validSignature, validSignature] }],
  ])('refuses %s', (_why, headers) => {
    expect(verifyWebhook(body, headers, secret)).toBe(false);
  });

  it('accepts a space-separated list of signatures when one matches (secret rotation), and refuses it when none does', () => {
    const other = signWebhook(generateWebhookSecret(), id, body, at)['webhook-signature'];
    const headers = (signature: string): WebhookSignatureHeaders => ({ ...signed, 'webhook-signature': signature });
    expect(verifyWebhook(body, headers(`${other} ${validSignature}`), secret)).toBe(true);
    expect(verifyWebhook(body, headers(`${other} ${other}`), secret)).toBe(false);
  });

  it.each(['whsec_', 'whsec_ab-_cd-_ef-_gh-_', 'whsec_!!!!'])('throws InvalidWebhookSecretError for the undecodable secret %p', (bad) => {
    expect(() => signWebhook(bad, id, body, at)).toThrow(InvalidWebhookSecretError);
    expect(() => verifyWebhook(body, signed, bad)).toThrow(InvalidWebhookSecretError);
  });

  it('refuses to sign at an invalid or pre-1970 date', () => {
    expect(() => signWebhook(secret, id, body, new Date(Number.NaN))).toThrow(RangeError);
    expect(() => signWebhook(secret, id, body, new Date(-1000))).toThrow(RangeError);
  });

  it('generates whsec_ secrets of 32 random bytes in standard base64, which the library accepts, never the same twice', () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a.slice(6), 'base64')).toHaveLength(32);
    expect(() => new Webhook(a)).not.toThrow();
    expect(generateWebhookSecret()).not.toBe(a);
  });

  it('signs with each of several secrets (a rotation\'s grace): one v1 entry per secret, and either secret verifies', () => {
    const previous = generateWebhookSecret();
    const headers = signWebhook([secret, previous], id, body, at);
    const entries = headers['webhook-signature'].split(' ');
    expect(entries).toEqual([signWebhook(secret, id, body, at)['webhook-signature'], signWebhook(previous, id, body, at)['webhook-signature']]);
    expect(verifyWebhook(body, headers, secret)).toBe(true);
    expect(verifyWebhook(body, headers, previous)).toBe(true);
    expect(verifyWebhook(body, headers, generateWebhookSecret())).toBe(false);
    expect(() => signWebhook([], id, body, at)).toThrow(InvalidWebhookSecretError);
  });
});
