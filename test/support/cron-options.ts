import 'reflect-metadata';

// @nestjs/schedule keeps @Cron()'s options as method metadata under this key (schedule.constants).
const SCHEDULE_CRON_OPTIONS = 'SCHEDULE_CRON_OPTIONS';

export interface CronOptions {
  cronTime: string;
  disabled?: boolean;
  name?: string;
  waitForCompletion?: boolean;
}

/**
 * The @Cron() options of a method as decorated with the environment variable `env` = `value`
 * (undefined: unset). A sweep reads its expression when its module is first loaded, so `load`
 * requires a fresh copy of that module (inside jest.isolateModules) and returns the method.
 */
export function cronOptionsWith(env: string, value: string | undefined, load: () => object): CronOptions {
  const saved = process.env[env];
  if (value === undefined) delete process.env[env];
  else process.env[env] = value;
  try {
    let options: CronOptions | undefined;
    jest.isolateModules(() => {
      const method = load();
      options = Reflect.getMetadata(SCHEDULE_CRON_OPTIONS, method);
    });
    return options!;
  } finally {
    if (saved === undefined) delete process.env[env];
    else process.env[env] = saved;
  }
}
