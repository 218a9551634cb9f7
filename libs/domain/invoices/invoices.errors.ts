/** Every error code libs/domain/invoices answers, in one place (OpenAPI and tests list them from here). */
export const InvoicesErrorCode = {
  /** 404: no invoice with that id in this tenant. */
  invoiceNotFound: 'invoice_not_found',
  /** 409: the tenant already has an invoice with this number. */
  invoiceNumberTaken: 'invoice_number_taken',
  /** 409: the status change is not allowed from the invoice's status (void only from draft/open, paid only from open), or a paid/void invoice was edited. */
  invalidInvoiceTransition: 'invalid_invoice_transition',
} as const;
export type InvoicesErrorCode = (typeof InvoicesErrorCode)[keyof typeof InvoicesErrorCode];
