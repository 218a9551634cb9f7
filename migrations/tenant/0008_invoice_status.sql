-- Invoice lifecycle (libs/domain/invoices): a status a UI can filter on and a due date the overdue
-- sweep reads (it used "created more than N days ago" while the schema had no due date).
--
-- Existing invoices become `open` (the default): they were issued, and nothing said they were paid.
-- The transitions (void only from draft/open, paid only from open) are the service's rule, checked
-- in an UPDATE … WHERE status IN (…) so two concurrent transitions cannot both win; the CHECK only
-- keeps the column to the four names.
ALTER TABLE invoices
  ADD COLUMN status text NOT NULL DEFAULT 'open' CHECK (status IN ('draft', 'open', 'paid', 'void')),
  ADD COLUMN due_at timestamptz;

-- GET /invoices?status= pages newest first within one status; the overdue sweep finds open invoices
-- past their due date.
CREATE INDEX invoices_tenant_status_created_idx ON invoices (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX invoices_tenant_open_due_idx ON invoices (tenant_id, due_at) WHERE status = 'open';
