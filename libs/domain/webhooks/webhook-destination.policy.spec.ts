import { ApiException } from '#strata/common';
import { isPermanentFailure } from './webhook-delivery.service';
import { BlockedDestinationError, isPublicAddress, parseWebhookUrl, publicOnlyLookup } from './webhook-destination.policy';

function refusal(raw: string, allowPrivate = false): string {
  try {
    parseWebhookUrl(raw, allowPrivate);
  } catch (err) {
    if (err instanceof ApiException) return `${err.getStatus()} ${err.code}`;
    throw err;
  }
  return 'accepted';
}

describe('webhook URL rules', () => {
  it.each(['https://hooks.example.com/strata', 'http://example.com:8080/in?token=abc', 'https://[2001:4860:4860::8888]/x', 'https://8.8.8.8/'])(
    'accepts %s',
    (url) => {
      expect(refusal(url)).toBe('accepted');
    },
  );

  it('returns the normalised URL', () => {
    expect(parseWebhookUrl('HTTPS://Hooks.Example.COM', false)).toBe('https://hooks.example.com/');
  });

  it.each([
    ['not a url', 'relative'],
    ['ftp://example.com/x', 'another scheme'],
    ['javascript:alert(1)', 'javascript'],
    ['file:///etc/passwd', 'file'],
    ['https://user:pass@example.com/', 'userinfo'],
    ['https://token@example.com/', 'a user name'],
    [`https://example.com/${'a'.repeat(2040)}`, 'over 2048 characters'],
  ])('refuses %s (%s) with 400 invalid_webhook_url', (url) => {
    expect(refusal(url)).toBe('400 invalid_webhook_url');
  });

  it.each([
    'http://localhost:3000/',
    'http://api.localhost/',
    'http://127.0.0.1/',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://10.0.0.8/',
    'http://192.168.1.1/',
    'http://172.16.0.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.64.0.1/',
    'http://0.0.0.0/',
    'http://[::1]/',
    'http://[fe80::1]/',
    'http://[fd00::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::7f00:1]/',
    'http://[::127.0.0.1]/',
    'http://[::a00:1]/',
    'http://localhost./',
    'http://api.localhost./',
    'http://[64:ff9b:1::7f00:1]/',
    'http://[fec0::1]/',
  ])('refuses the non-public destination %s unless private networks are allowed', (url) => {
    expect(refusal(url)).toBe('400 invalid_webhook_url');
    expect(refusal(url, true)).toBe('accepted');
  });

  it('classifies resolved addresses: only public unicast passes', () => {
    expect(isPublicAddress('93.184.215.14')).toBe(true);
    expect(isPublicAddress('2606:4700::1111')).toBe(true);
    for (const a of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '::1', 'fc00::1', '::ffff:10.0.0.1', '2002:7f00:1::', '::7f00:1', '::a00:1', '100::1', '2001:2::1', 'not-an-ip']) {
      expect(isPublicAddress(a)).toBe(false);
    }
  });

  it('refuses at connect time a host name that resolves to a loopback address', async () => {
    const err = await new Promise<Error | null>((resolve) => publicOnlyLookup('localhost', {}, (e) => resolve(e)));
    expect(err).toBeInstanceOf(BlockedDestinationError);
    expect(err!.message).toMatch(/resolved to (127\.0\.0\.1|::1), a loopback address.*WEBHOOKS_ALLOW_PRIVATE_NETWORKS/);
  });
});

describe('webhook retry policy', () => {
  it.each([500, 502, 503, 504, 408, 425, 429])('retries HTTP %i', (status) => expect(isPermanentFailure(status)).toBe(false));
  it.each([301, 302, 307, 400, 401, 403, 404, 410, 422])('gives up on HTTP %i', (status) => expect(isPermanentFailure(status)).toBe(true));
});
