import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { Client, escapeIdentifier } from 'pg';
import { TIERS } from '#strata/control-plane';
import { tierRules } from '#strata/tenancy/platform';
import type { TestApp } from './test-app';
import { runInfo, urlFor } from './test-env';

/** Where a tenant's objects would be: a local root, or a bucket. */
export type FileStore = { local: string } | { s3: S3Client; bucket: string };

export interface ScanSubject {
  id: string;
  /** The slug it had: its bridge schema and silo database are named after it, on every tier it may have lived. */
  slug: string;
  /** Every user who belonged to it and to no other tenant: their accounts must be gone too. */
  soleUserIds?: string[];
}

/**
 * Looks for anything of one tenant in every store the app writes, independently of the code that
 * deleted it, and returns a line per leftover (empty: nothing left):
 * - PostgreSQL: every table of every schema of the test database with a `tenant_id` column (the
 *   control plane, the pool's shared schema, bridge schemas, the placement fence) except the
 *   deletion report itself and the audit log; the bridge schema and silo database named after the slug on any tier;
 *   the sole users' accounts; the tenant record must be a tombstone (deleted, slug and name cleared);
 * - Redis: every key that names the tenant id, and every BullMQ job (under the run's JOBS_PREFIX)
 *   whose data names it;
 * - file storage: any object under `{tenantId}/`.
 */
export async function scanTenantStores(t: TestApp, subject: ScanSubject, files: FileStore): Promise<string[]> {
  const leftovers: string[] = [];
  const db = new Client({ connectionString: urlFor(t.db.name) });
  await db.connect();
  try {
    const tables = await db.query<{ schema: string; table: string }>(
      `SELECT c.table_schema AS schema, c.table_name AS table FROM information_schema.columns c
         JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name AND tb.table_type = 'BASE TABLE'
        WHERE c.column_name = 'tenant_id' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
        ORDER BY 1, 2`,
    );
    for (const { schema, table } of tables.rows) {
      // Kept on purpose: the deletion report, and the audit log (append-only and hash-chained: the
      // record of who did what to the tenant, its deletion included, outlives it).
      if (schema === 'control' && (table === 'tenant_deletions' || table === 'audit_log')) continue;
      const n = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${escapeIdentifier(schema)}.${escapeIdentifier(table)} WHERE tenant_id::text = $1`, [subject.id]);
      if (n.rows[0].n > 0) leftovers.push(`postgres ${t.db.name}: ${n.rows[0].n} row(s) in ${schema}.${table}`);
    }
    for (const tier of TIERS) {
      const names = tierRules(tier).placementFor(subject.slug);
      if (tier === 'bridge') {
        const s = await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [names.schemaName]);
        if (s.rowCount) leftovers.push(`postgres ${t.db.name}: schema ${names.schemaName}`);
      }
      if (names.databaseName) {
        const d = await db.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [names.databaseName]);
        if (d.rowCount) leftovers.push(`postgres: database ${names.databaseName}`);
      }
    }
    const record = await db.query<{ status: string; slug: string; name: string }>(`SELECT status, slug, name FROM control.tenants WHERE id = $1`, [subject.id]);
    const r = record.rows[0];
    if (r && (r.status !== 'deleted' || r.slug === subject.slug || r.name !== '(deleted)')) {
      leftovers.push(`postgres control.tenants: record is ${r.status}, slug ${r.slug}, name ${r.name} (not a tombstone)`);
    }
    if (subject.soleUserIds?.length) {
      const users = await db.query<{ email: string }>(`SELECT email FROM control.users WHERE id = ANY($1::uuid[])`, [subject.soleUserIds]);
      for (const u of users.rows) leftovers.push(`postgres control.users: ${u.email}`);
    }
  } finally {
    await db.end();
  }

  const redis = new Redis(t.config.redisUrl!, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    for (const key of await scanKeys(redis, `*${subject.id}*`)) leftovers.push(`redis key ${key}`);
    const prefix = process.env.JOBS_PREFIX ?? `strata-test-${runInfo().runId}`;
    for (const key of await scanKeys(redis, `${prefix}:*`)) {
      if ((await redis.type(key)) !== 'hash') continue;
      const data = await redis.hget(key, 'data');
      if (data?.includes(subject.id)) leftovers.push(`bullmq job ${key}`);
    }
  } finally {
    redis.disconnect();
  }

  if ('local' in files) {
    const dir = join(files.local, subject.id);
    if (existsSync(dir)) {
      const found = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      leftovers.push(`local files: ${dir} (${found.length} file(s))`);
    }
  } else {
    const listed = await files.s3.send(new ListObjectsV2Command({ Bucket: files.bucket, Prefix: `${subject.id}/` }));
    for (const o of listed.Contents ?? []) leftovers.push(`s3 object ${o.Key}`);
  }
  return leftovers;
}

async function scanKeys(redis: Redis, match: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}
