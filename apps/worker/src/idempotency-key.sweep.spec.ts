import { cronOptionsWith } from '../../../test/support/cron-options';

/** The @Cron() options of IdempotencyKeySweep.onSchedule as decorated with IDEMPOTENCY_KEY_SWEEP_CRON = `value`. */
const sweepCron = (value: string | undefined) =>
  cronOptionsWith(
    'IDEMPOTENCY_KEY_SWEEP_CRON',
    value,
    () => (require('./idempotency-key.sweep') as typeof import('./idempotency-key.sweep')).IdempotencyKeySweep.prototype.onSchedule,
  );

describe('IDEMPOTENCY_KEY_SWEEP_CRON', () => {
  it('defaults to hourly at :17, enabled', () => {
    expect(sweepCron(undefined)).toMatchObject({ cronTime: '17 * * * *', disabled: false, name: 'idempotency-key-sweep', waitForCompletion: true });
  });

  it('takes another expression as given', () => {
    expect(sweepCron('*/2 * * * *')).toMatchObject({ cronTime: '*/2 * * * *', disabled: false });
  });

  it('`off` disables the sweep cron', () => {
    expect(sweepCron('off')).toMatchObject({ disabled: true });
  });
});
