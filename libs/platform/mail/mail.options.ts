import type { MailDriverName } from './mail.port';

/** Options of MailModule.forRoot(); anything unset comes from the environment, then the defaults. */
export interface MailModuleOptions {
  driver?: MailDriverName;
  /** The From header: an address, or `Name <address>`. */
  from?: string;
  /** smtp driver: `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…:465` (TLS from the start). */
  smtpUrl?: string;
  /** smtp driver: longest wait for the connection, the greeting and each socket read. */
  timeoutMs?: number;
}

export type ResolvedMailOptions =
  | { driver: 'log'; from: string }
  | { driver: 'smtp'; from: string; smtpUrl: string; timeoutMs: number };

export const MAIL_OPTIONS = Symbol('MAIL_OPTIONS');
export const DEFAULT_MAIL_FROM = 'Strata <no-reply@strata.localhost>';
export const DEFAULT_SMTP_TIMEOUT_MS = 10_000;

function opt(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key];
  return v === undefined || v === '' ? undefined : v;
}

/** Checked at startup: a bad MAIL_* setting stops the process instead of the first invitation. */
export function resolveMailOptions(given: MailModuleOptions, env: NodeJS.ProcessEnv): ResolvedMailOptions {
  const driver = given.driver ?? opt(env, 'MAIL_DRIVER') ?? 'log';
  const from = given.from ?? opt(env, 'MAIL_FROM') ?? DEFAULT_MAIL_FROM;
  if (driver === 'log') return { driver, from };
  if (driver !== 'smtp') throw new Error(`config: MAIL_DRIVER must be log or smtp, got ${JSON.stringify(driver)}`);
  const smtpUrl = given.smtpUrl ?? opt(env, 'SMTP_URL');
  if (!smtpUrl) throw new Error('config: SMTP_URL is required with MAIL_DRIVER=smtp (smtp://user:pass@host:587 or smtps://…:465)');
  let scheme: string;
  try {
    scheme = new URL(smtpUrl).protocol;
  } catch {
    // The URL may hold a password: name the problem, not the value.
    throw new Error('config: SMTP_URL is not a URL (smtp://user:pass@host:587 or smtps://…:465)');
  }
  if (scheme !== 'smtp:' && scheme !== 'smtps:') throw new Error(`config: SMTP_URL must start with smtp:// or smtps://, got ${scheme}//`);
  const timeoutMs = given.timeoutMs ?? DEFAULT_SMTP_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new Error(`mail: timeoutMs must be a positive integer, got ${timeoutMs}`);
  return { driver, from, smtpUrl, timeoutMs };
}
