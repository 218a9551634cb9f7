import { createHmac } from 'node:crypto';
import { generateWebhookSecret, signWebhookPayload, verifyWebhookSignature } from './webhook.signature';

const secret = 'whsec_test-secret-0123456789abcdefghijklmnopqrstu';
const body = JSON.stringify({ id: 'evt', type: 'invoice.created', createdAt: '2026-01-01T00:00:00.000Z', data: { amount: 1999 } });
const now = 1_780_000_000;

describe('webhook signatures', () => {
  it('signs "<t>.<body>" with HMAC-SHA256 in the documented header format', () => {
    const header = signWebhookPayload(body, secret, now);
    const expected = createHmac('sha256', secret).update(`${now}.${body}`).digest('hex');
    expect(header).toBe(`t=${now},v1=${expected}`);
  });

  it('verifies its own signature, from a string or the raw bytes', () => {
    const header = signWebhookPayload(body, secret, now);
    expect(verifyWebhookSignature(body, header, secret, { now })).toBe(true);
    expect(verifyWebhookSignature(Buffer.from(body), header, secret, { now: now + 299 })).toBe(true);
  });

  it('refuses a tampered body', () => {
    const header = signWebhookPayload(body, secret, now);
    expect(verifyWebhookSignature(body.replace('1999', '9999'), header, secret, { now })).toBe(false);
    expect(verifyWebhookSignature(`${body} `, header, secret, { now })).toBe(false);
  });

  it('refuses another secret, such as another endpoint\'s or tenant\'s', () => {
    const header = signWebhookPayload(body, secret, now);
    expect(verifyWebhookSignature(body, header, generateWebhookSecret(), { now })).toBe(false);
  });

  it('refuses a stale or future timestamp outside the tolerance, and a timestamp changed after signing', () => {
    const header = signWebhookPayload(body, secret, now);
    expect(verifyWebhookSignature(body, header, secret, { now: now + 301 })).toBe(false);
    expect(verifyWebhookSignature(body, header, secret, { now: now - 301 })).toBe(false);
    expect(verifyWebhookSignature(body, header, secret, { now: now + 3600, toleranceSeconds: 3600 })).toBe(true);
    expect(verifyWebhookSignature(body, header.replace(`t=${now}`, `t=${now + 10}`), secret, { now })).toBe(false);
  });

  it.each([undefined, null, '', 'garbage', `t=${now}`, 'v1=abc', `t=x,v1=${'0'.repeat(64)}`, `t=${now},v1=${'0'.repeat(64)}`])(
    'refuses the malformed header %p',
    (header) => {
      expect(verifyWebhookSignature(body, header, secret, { now })).toBe(false);
    },
  );

  it('accepts a header listing several v1 signatures when one matches (secret rotation)', () => {
    const good = signWebhookPayload(body, secret, now);
    const other = signWebhookPayload(body, generateWebhookSecret(), now).split(',')[1];
    expect(verifyWebhookSignature(body, `${good},${other}`, secret, { now })).toBe(true);
    expect(verifyWebhookSignature(body, `t=${now},${other}`, secret, { now })).toBe(false);
  });

  it('generates whsec_ secrets of 32 random bytes, never the same twice', () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.slice(6), 'base64url')).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(a);
  });
});
