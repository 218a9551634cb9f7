import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { WebhookOutbox } from './webhook.outbox';

/**
 * In-process domain events that become webhook events. The emitting lib does not know webhooks
 * exist: libs/domain/invoices emits `invoice.created` (with its InvoiceView) through EventEmitter2.
 */
@Injectable()
export class WebhookEventsListener {
  constructor(private readonly outbox: WebhookOutbox) {}

  // suppressErrors: false — Nest's default logs a listener's error and swallows it, which would
  // commit an invoice whose outbox rows were never written. Thrown, it rolls the invoice back.
  @OnEvent('invoice.created', { suppressErrors: false })
  async onInvoiceCreated(invoice: object): Promise<void> {
    await this.outbox.record('invoice.created', invoice);
  }
}
