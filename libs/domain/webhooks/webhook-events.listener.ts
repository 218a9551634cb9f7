import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { WebhookOutbox } from './webhook.outbox';

/**
 * In-process domain events that become webhook events. The emitting lib does not know webhooks
 * exist: libs/domain/invoices emits `invoice.created`/`invoice.updated` (with its InvoiceView) and
 * libs/domain/projects `project.*`/`task.*` through EventEmitter2, inside their tenant transaction.
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

  // Emitted by libs/domain/invoices when an invoice changes (its status/update routes).
  @OnEvent('invoice.updated', { suppressErrors: false })
  async onInvoiceUpdated(invoice: object): Promise<void> {
    await this.outbox.record('invoice.updated', invoice);
  }

  // libs/domain/projects: created/updated carry the ProjectView/TaskView, deleted carries `{ id }`.
  @OnEvent('project.created', { suppressErrors: false })
  async onProjectCreated(project: object): Promise<void> {
    await this.outbox.record('project.created', project);
  }

  @OnEvent('project.updated', { suppressErrors: false })
  async onProjectUpdated(project: object): Promise<void> {
    await this.outbox.record('project.updated', project);
  }

  @OnEvent('project.deleted', { suppressErrors: false })
  async onProjectDeleted(project: object): Promise<void> {
    await this.outbox.record('project.deleted', project);
  }

  @OnEvent('task.created', { suppressErrors: false })
  async onTaskCreated(task: object): Promise<void> {
    await this.outbox.record('task.created', task);
  }

  @OnEvent('task.updated', { suppressErrors: false })
  async onTaskUpdated(task: object): Promise<void> {
    await this.outbox.record('task.updated', task);
  }

  @OnEvent('task.deleted', { suppressErrors: false })
  async onTaskDeleted(task: object): Promise<void> {
    await this.outbox.record('task.deleted', task);
  }
}
