import type { ClientBase } from 'pg';
import { DutyCycle } from '#strata/common';

export interface TenantTable {
  name: string;
  /** Column names in table order (every home has the same, by construction of the migrations). */
  columns: string[];
}

/**
 * The tenant tables of a home (every table of `schema` with a tenant_id column), parents before
 * children along their foreign keys, so rows can be inserted in this order and deleted in reverse.
 * Read from the catalog, so a table a later migration adds is moved and purged without code changes.
 */
export async function tenantTablesOf(client: ClientBase, schema: string): Promise<TenantTable[]> {
  const tables = await client.query<{ name: string; columns: string[] }>(
    `SELECT c.relname AS name, array_agg(a.attname::text ORDER BY a.attnum) AS columns
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
      GROUP BY c.relname`,
    [schema],
  );
  const edges = await client.query<{ child: string; parent: string }>(
    `SELECT c.relname AS child, p.relname AS parent
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid
       JOIN pg_class p ON p.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE k.contype = 'f' AND n.nspname = $1 AND k.conrelid <> k.confrelid`,
    [schema],
  );
  const parents = new Map<string, Set<string>>();
  for (const t of tables.rows) parents.set(t.name, new Set());
  for (const e of edges.rows) parents.get(e.child)?.add(e.parent);
  const ordered: TenantTable[] = [];
  const placed = new Set<string>();
  const byName = new Map(tables.rows.map((t) => [t.name, t]));
  // Kahn's algorithm, alphabetical among equals so the order is stable between homes.
  while (placed.size < byName.size) {
    const ready = [...byName.keys()].filter((n) => !placed.has(n) && [...(parents.get(n) ?? [])].every((p) => placed.has(p) || !byName.has(p))).sort();
    if (!ready.length) throw new Error(`tenant tables of ${schema} have a foreign-key cycle`);
    for (const n of ready) {
      placed.add(n);
      ordered.push({ name: n, columns: byName.get(n)!.columns });
    }
  }
  return ordered;
}

/**
 * Deletes one tenant's rows from every tenant table of `schema`, children first, on an owner session
 * that enters the tenant (search_path and app.tenant_id), so FORCE RLS holds for a non-superuser owner too.
 *
 * In batches of `batchRows`, each its own transaction, resting `restRatio` times as long as the batch
 * took: the home is shared, and one DELETE of a large tenant's rows (100k rows after a move out of the
 * pool) held the server's CPU and WAL long enough to show in every other tenant's latency. A deletion
 * that stops half-way leaves only rows of this tenant; running it again deletes the rest.
 */
export async function deleteTenantRows(
  client: ClientBase,
  schema: string,
  tenantId: string,
  { batchRows = 5000, restRatio = 1 }: { batchRows?: number; restRatio?: number } = {},
): Promise<number> {
  const tables = await tenantTablesOf(client, schema);
  const limit = Math.max(1, Math.floor(batchRows));
  const cycle = new DutyCycle(restRatio);
  let deleted = 0;
  for (const t of [...tables].reverse()) {
    const table = `${quoteIdent(schema)}.${quoteIdent(t.name)}`;
    for (;;) {
      const n = await cycle.run(async () => {
        await client.query('BEGIN');
        try {
          await client.query(`SELECT set_config('search_path', $1, true), set_config('app.tenant_id', $2, true)`, [quoteIdent(schema), tenantId]);
          const r = await client.query(`DELETE FROM ${table} WHERE tenant_id = $1 AND id IN (SELECT id FROM ${table} WHERE tenant_id = $1 LIMIT ${limit})`, [tenantId]);
          await client.query('COMMIT');
          return r.rowCount ?? 0;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
      deleted += n;
      if (n < limit) break;
    }
  }
  return deleted;
}

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
