// Public API of libs/platform/mail: the outbound email port and its drivers.
export { MAIL_SENDER, MailNotSentError, type MailSender, type OutboundMail, type MailDriverName } from './mail.port';
export { MailModule } from './mail.module';
export { resolveMailOptions, DEFAULT_MAIL_FROM, type MailModuleOptions, type ResolvedMailOptions } from './mail.options';
export { LogMailDriver, type MailLog } from './log-mail.driver';
export { SmtpMailDriver, type SmtpMailOptions } from './smtp-mail.driver';
