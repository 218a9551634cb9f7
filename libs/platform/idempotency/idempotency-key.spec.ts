import { createHash } from 'node:crypto';
import { ApiException } from '#strata/common';
import { canonicalJson, idempotencyKeyRowId, parseIdempotencyKey, requestFingerprint, type RequestShape } from './idempotency-key';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiException) return `${err.getStatus()} ${err.code}`;
    throw err;
  }
  throw new Error('expected an ApiException');
};

describe('parseIdempotencyKey', () => {
  it('answers undefined when the request sent no key', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
  });

  it.each([
    ['one character', 'a'],
    ['a UUID', 'f47ac10b-58cc-4372-a567-0e02b2c3d479'],
    ['spaces and punctuation', 'order 42 / retry #1'],
    ['255 characters', '~'.repeat(255)],
    ['every printable ASCII symbol', ' !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'],
  ])('accepts a key of %s', (_what, key) => {
    expect(parseIdempotencyKey(key)).toBe(key);
  });

  it.each([
    ['an empty value', ''],
    ['256 characters', 'k'.repeat(256)],
    ['a tab', 'a\tb'],
    ['a control character', 'a\u0001b'],
    ['DEL', 'a\u007fb'],
    ['a non-ASCII letter', 'clé'],
    ['an emoji', 'key-🔑'],
  ])('refuses %s with 400 invalid_idempotency_key', (_what, key) => {
    expect(codeOf(() => parseIdempotencyKey(key))).toBe('400 invalid_idempotency_key');
  });

  it('refuses a key sent twice as separate values', () => {
    expect(codeOf(() => parseIdempotencyKey(['a', 'b']))).toBe('400 invalid_idempotency_key');
  });
});

describe('idempotencyKeyRowId', () => {
  it('is a UUID-shaped id that depends on the key only', () => {
    const id = idempotencyKeyRowId('order-42');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(idempotencyKeyRowId('order-42')).toBe(id);
    expect(idempotencyKeyRowId('order-43')).not.toBe(id);
    // The first 128 bits of SHA-256("order-42").
    expect(id.replace(/-/g, '')).toBe(createHash('sha256').update('order-42').digest('hex').slice(0, 32));
  });
});

describe('requestFingerprint', () => {
  const base: RequestShape = { method: 'POST', route: '/projects/:id/tasks', params: { id: 'p1' }, query: {}, body: { title: 'x', status: 'todo' } };

  it('is the same for the same body with its fields in another order, at every depth', () => {
    const a = requestFingerprint({ ...base, body: { a: 1, nested: { y: [1, { q: 1, p: 2 }], x: null } } });
    const b = requestFingerprint({ ...base, body: { nested: { x: null, y: [1, { p: 2, q: 1 }] }, a: 1 } });
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each<[string, Partial<RequestShape>]>([
    ['another body value', { body: { title: 'y', status: 'todo' } }],
    ['a body with one field more', { body: { title: 'x', status: 'todo', extra: 1 } }],
    ['another route', { route: '/projects' }],
    ['another path id', { params: { id: 'p2' } }],
    ['another query', { query: { dryRun: 'true' } }],
    ['another method', { method: 'PUT' }],
    ['an array in another order', { body: { title: 'x', status: ['todo', 'doing'] } }],
  ])('differs for %s', (_what, change) => {
    expect(requestFingerprint({ ...base, ...change })).not.toBe(requestFingerprint(base));
  });

  it('tells arrays in different orders apart, and a body that only differs by an own "__proto__" key', () => {
    expect(requestFingerprint({ ...base, body: [1, 2] })).not.toBe(requestFingerprint({ ...base, body: [2, 1] }));
    expect(requestFingerprint({ ...base, body: JSON.parse('{"a":1,"__proto__":{"b":2}}') })).not.toBe(requestFingerprint({ ...base, body: { a: 1 } }));
  });

  it('takes uploaded files by content, name and type', () => {
    const file = { fieldname: 'file', originalname: 'a.txt', mimetype: 'text/plain', size: 5, buffer: Buffer.from('hello') };
    const shape = { ...base, route: '/files', params: {}, body: {}, files: [file] };
    expect(requestFingerprint(shape)).toBe(requestFingerprint({ ...shape, files: [{ ...file, buffer: Buffer.from('hello') }] }));
    expect(requestFingerprint({ ...shape, files: [{ ...file, buffer: Buffer.from('hellO') }] })).not.toBe(requestFingerprint(shape));
    expect(requestFingerprint({ ...shape, files: [{ ...file, originalname: 'b.txt' }] })).not.toBe(requestFingerprint(shape));
    expect(requestFingerprint({ ...shape, files: [] })).not.toBe(requestFingerprint(shape));
  });
});

describe('canonicalJson', () => {
  it('sorts keys and leaves arrays and values as they are', () => {
    expect(canonicalJson({ b: [3, 1], a: { d: 'x', c: true } })).toBe('{"a":{"c":true,"d":"x"},"b":[3,1]}');
  });
});
