// Tests capture logs where they need them; everything else stays quiet.
process.env.LOG_LEVEL ??= 'silent';

import { readFileSync } from 'node:fs';

/** Written by global-setup, read by every test file: what this run created on the server. */
export interface TestRunInfo {
  runId: string;
  adminUrl: string;
  appRole: string;
  templateDb: string;
}

export function adminUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function runInfo(): TestRunInfo {
  const file = process.env.STRATA_TEST_RUN_INFO;
  if (!file) throw new Error('STRATA_TEST_RUN_INFO is unset: run integration/e2e tests through jest (global-setup)');
  return JSON.parse(readFileSync(file, 'utf8')) as TestRunInfo;
}

export function urlFor(database: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${database}`;
  return u.toString();
}
