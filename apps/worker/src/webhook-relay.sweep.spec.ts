import { cronOptionsWith } from '../../../test/support/cron-options';

/** The @Cron() options of WebhookRelaySweep.onSchedule as decorated with WEBHOOK_RELAY_CRON = `value`. */
const relayCron = (value: string | undefined) =>
  cronOptionsWith('WEBHOOK_RELAY_CRON', value, () => (require('./webhook-relay.sweep') as typeof import('./webhook-relay.sweep')).WebhookRelaySweep.prototype.onSchedule);

describe('WEBHOOK_RELAY_CRON', () => {
  it('defaults to every 5 minutes, enabled', () => {
    expect(relayCron(undefined)).toMatchObject({ cronTime: '*/5 * * * *', disabled: false, name: 'webhook-outbox-relay', waitForCompletion: true });
  });

  it('takes another expression as given', () => {
    expect(relayCron('*/2 * * * *')).toMatchObject({ cronTime: '*/2 * * * *', disabled: false });
  });

  it('`off` disables the relay cron', () => {
    expect(relayCron('off')).toMatchObject({ disabled: true });
  });
});
