// @nestjs/schedule keeps @Cron()'s options as method metadata under this key (schedule.constants).
const SCHEDULE_CRON_OPTIONS = 'SCHEDULE_CRON_OPTIONS';

/** The @Cron() options of WebhookRelaySweep.onSchedule as decorated with WEBHOOK_RELAY_CRON = `value`. */
function cronOptionsWith(value: string | undefined): { cronTime: string; disabled?: boolean; name?: string } {
  const saved = process.env.WEBHOOK_RELAY_CRON;
  if (value === undefined) delete process.env.WEBHOOK_RELAY_CRON;
  else process.env.WEBHOOK_RELAY_CRON = value;
  try {
    let options: { cronTime: string; disabled?: boolean; name?: string } | undefined;
    // The expression is read when the module is first loaded: load a fresh copy per case.
    jest.isolateModules(() => {
      const { WebhookRelaySweep } = require('./webhook-relay.sweep') as typeof import('./webhook-relay.sweep');
      options = Reflect.getMetadata(SCHEDULE_CRON_OPTIONS, WebhookRelaySweep.prototype.onSchedule);
    });
    return options!;
  } finally {
    if (saved === undefined) delete process.env.WEBHOOK_RELAY_CRON;
    else process.env.WEBHOOK_RELAY_CRON = saved;
  }
}

describe('WEBHOOK_RELAY_CRON', () => {
  it('defaults to every 5 minutes, enabled', () => {
    expect(cronOptionsWith(undefined)).toMatchObject({ cronTime: '*/5 * * * *', disabled: false, name: 'webhook-outbox-relay', waitForCompletion: true });
  });

  it('takes another expression as given', () => {
    expect(cronOptionsWith('*/2 * * * *')).toMatchObject({ cronTime: '*/2 * * * *', disabled: false });
  });

  it('`off` disables the relay cron', () => {
    expect(cronOptionsWith('off')).toMatchObject({ disabled: true });
  });
});
