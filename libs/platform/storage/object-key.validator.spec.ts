import { assertObjectKey, MAX_KEY_LENGTH } from './object-key.validator';
import { StorageKeyError } from './storage.errors';

const refusal = (key: unknown): string | undefined => {
  try {
    assertObjectKey(key);
  } catch (err) {
    if (err instanceof StorageKeyError) return err.message;
    throw err;
  }
  return undefined;
};

describe('object key validation', () => {
  it.each(['files/3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60', 'a', 'reports/2026/q1.v2.pdf', "x!-_.*'()y", 'a'.repeat(255)])(
    'accepts %p',
    (key) => {
      expect(refusal(key)).toBeUndefined();
    },
  );

  it.each([
    ['../etc/passwd', /start with '\.'/],
    ['files/../../etc/passwd', /start with '\.'/],
    ['files/..', /start with '\.'/],
    ['./files', /start with '\.'/],
    ['files/.', /start with '\.'/],
    ['..\\..\\windows\\win.ini', /backslash/],
    ['files\\x', /backslash/],
    ['/etc/passwd', /relative/],
    ['//server/share', /relative/],
    ['%2e%2e/%2e%2e/etc/passwd', /percent-encoded/],
    ['..%2fetc%2fpasswd', /percent-encoded/],
    ['files/%2E%2E', /percent-encoded/],
    ['files/\u0000.png', /control/],
    ['files/a\nb', /control/],
    ['files/a\u007fb', /control/],
    ['files//x', /empty segments/],
    ['files/', /empty segments/],
    ['', /1\.\./],
    ['C:/Windows/x', /only A-Z/],
    ['files/\uff0e\uff0e/x', /only A-Z/], // fullwidth full stops, NFKC-equal to ".."
    ['files/a\u2215b', /only A-Z/], // division slash
    ['files/a b', /only A-Z/],
    ['files/' + 'a'.repeat(256), /at most 255/],
  ])('refuses %p', (key, reason) => {
    expect(refusal(key)).toMatch(reason);
  });

  it('refuses keys longer than the bound and values that are not strings', () => {
    expect(refusal('a/'.repeat(MAX_KEY_LENGTH / 2) + 'a')).toMatch(/1\.\.512/);
    expect(refusal(undefined)).toMatch(/must be a string/);
    expect(refusal(42)).toMatch(/must be a string/);
  });
});
