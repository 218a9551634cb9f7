import { Logger } from '@nestjs/common';
import type { MailSender, OutboundMail } from './mail.port';

/** What the log driver writes to: Nest's Logger, or anything with its log method (tests). */
export interface MailLog {
  log(message: string): void;
  warn(message: string): void;
}

/**
 * Development driver: writes each message (recipient, subject, body with its links) to the log
 * instead of sending it, so an invitation can be accepted without a mail server. The body holds
 * bearer secrets (invitation links) and the recipient is personal data, which is why production
 * must use MAIL_DRIVER=smtp: this driver says so once, when it starts.
 */
export class LogMailDriver implements MailSender {
  readonly driver = 'log' as const;

  constructor(
    private readonly from: string,
    private readonly logger: MailLog = new Logger('Mail'),
  ) {
    this.logger.warn('MAIL_DRIVER=log: emails are written to this log, not sent (their links are secrets); use MAIL_DRIVER=smtp in production');
  }

  async send(mail: OutboundMail): Promise<void> {
    this.logger.log([`mail (not sent, MAIL_DRIVER=log) from ${this.from} to ${mail.to}: ${mail.subject}`, mail.text].join('\n'));
  }
}
