import { signingSecrets } from './webhook-delivery.service';
import { resolveWebhooksOptions, WEBHOOK_DELIVERY_EVENT_TYPES, WEBHOOK_EVENT_TYPES, WEBHOOK_PING_EVENT } from './webhooks.options';

describe('webhooks options: rotation grace and log retention', () => {
  it('defaults to a 24 h grace after a rotation and a 30-day delivery log', () => {
    expect(resolveWebhooksOptions({})).toMatchObject({ secretGraceMs: 24 * 3600_000, deliveryRetentionMs: 30 * 24 * 3600_000 });
  });

  it('reads WEBHOOK_SECRET_GRACE_MS and WEBHOOK_DELIVERY_RETENTION_MS, and refuses values out of range by name', () => {
    expect(resolveWebhooksOptions({ WEBHOOK_SECRET_GRACE_MS: '0', WEBHOOK_DELIVERY_RETENTION_MS: '60000' })).toMatchObject({ secretGraceMs: 0, deliveryRetentionMs: 60_000 });
    expect(() => resolveWebhooksOptions({ WEBHOOK_SECRET_GRACE_MS: '-1' })).toThrow(/WEBHOOK_SECRET_GRACE_MS/);
    expect(() => resolveWebhooksOptions({ WEBHOOK_DELIVERY_RETENTION_MS: '1000' })).toThrow(/WEBHOOK_DELIVERY_RETENTION_MS/);
    expect(() => resolveWebhooksOptions({ WEBHOOK_DELIVERY_RETENTION_MS: '30d' })).toThrow(/WEBHOOK_DELIVERY_RETENTION_MS/);
  });

  it('lets nobody subscribe to webhook.ping, which only the ping route sends', () => {
    expect(WEBHOOK_EVENT_TYPES).not.toContain(WEBHOOK_PING_EVENT);
    expect(WEBHOOK_DELIVERY_EVENT_TYPES).toContain(WEBHOOK_PING_EVENT);
  });
});

describe('signingSecrets', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  const endpoint = (previousSecret: string | null, expires: Date | null) => ({ secret: 'whsec_new', previousSecret, previousSecretExpiresAt: expires });

  it('signs with the previous secret too while its grace lasts, and with the current one alone after it', () => {
    expect(signingSecrets(endpoint('whsec_old', new Date(now.getTime() + 1)), now)).toEqual(['whsec_new', 'whsec_old']);
    expect(signingSecrets(endpoint('whsec_old', now), now)).toEqual(['whsec_new']);
    expect(signingSecrets(endpoint(null, null), now)).toEqual(['whsec_new']);
  });
});
