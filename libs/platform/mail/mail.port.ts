/**
 * The outbound email port. Callers (auth's invitations) depend on this interface only; which
 * driver sends is configuration (MAIL_DRIVER), so development needs no mail server and production
 * swaps in SMTP without touching the callers.
 */
export const MAIL_SENDER = Symbol('MAIL_SENDER');

export interface OutboundMail {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

export interface MailSender {
  readonly driver: MailDriverName;
  /** Resolves once the message is handed over (logged, or accepted by the SMTP server); rejects with MailNotSentError. */
  send(mail: OutboundMail): Promise<void>;
}

export type MailDriverName = 'log' | 'smtp';

/** The message was not handed over. `message` names the cause, never credentials. */
export class MailNotSentError extends Error {
  constructor(reason: string) {
    super(`mail not sent: ${reason}`);
    this.name = 'MailNotSentError';
  }
}
