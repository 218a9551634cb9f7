import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface SqlMigration {
  version: string;
  name: string;
  sql: string;
  checksum: string;
}

export type MigrationSet = 'control' | 'tenant';

const FILE_RULE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Repository root: works from sources (libs/platform/migrator) and from the build (dist/libs/platform/migrator). */
function migrationsRoot(): string {
  const fromEnv = process.env.STRATA_MIGRATIONS_DIR;
  if (fromEnv) return fromEnv;
  const here = resolve(__dirname);
  const root = here.includes(`${join('dist', 'libs')}`) ? resolve(here, '../../../..') : resolve(here, '../../..');
  return join(root, 'migrations');
}

export function loadMigrations(set: MigrationSet): SqlMigration[] {
  const dir = join(migrationsRoot(), set);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((file) => {
      const m = FILE_RULE.exec(file);
      if (!m) throw new Error(`migration file ${dir}/${file} must be named NNNN_snake_name.sql`);
      const sql = readFileSync(join(dir, file), 'utf8');
      return { version: m[1], name: m[2], sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** The version a release needs: the newest file of the set. */
export function latestVersion(set: MigrationSet): string {
  const all = loadMigrations(set);
  return all.length ? all[all.length - 1].version : '0000';
}
