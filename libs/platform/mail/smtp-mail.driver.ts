import { createTransport, type Transporter } from 'nodemailer';
import { MailNotSentError, type MailSender, type OutboundMail } from './mail.port';

export interface SmtpMailOptions {
  from: string;
  smtpUrl: string;
  timeoutMs: number;
}

/**
 * Sends through an SMTP server with nodemailer (STARTTLS upgrade, pooling-free: invitations are
 * rare). Every phase has a deadline, so a mail server that does not answer fails the request
 * within `timeoutMs` rather than holding it.
 */
export class SmtpMailDriver implements MailSender {
  readonly driver = 'smtp' as const;
  readonly transport: Transporter;

  constructor(private readonly options: SmtpMailOptions) {
    this.transport = createTransport({
      url: options.smtpUrl,
      connectionTimeout: options.timeoutMs,
      greetingTimeout: options.timeoutMs,
      socketTimeout: options.timeoutMs,
      // Credentials and message bodies stay out of nodemailer's own logging.
      logger: false,
      debug: false,
    });
  }

  async send(mail: OutboundMail): Promise<void> {
    try {
      await this.transport.sendMail({ from: this.options.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
    } catch (err) {
      // nodemailer's messages name the phase and the server's answer, not the URL's password.
      const e = err as { code?: string; message?: string };
      throw new MailNotSentError([e.code, e.message].filter(Boolean).join(': ') || 'unknown SMTP error');
    }
  }

  close(): void {
    this.transport.close();
  }
}
