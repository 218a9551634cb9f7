import { callApi, tenantHeaders, type ApiAnswer, type ApiTarget } from './move-harness';
import type { OnboardedTenant } from './test-app';

/**
 * Concurrent reads and writes of several tenants over HTTP, each request checked: every answer must
 * be a 2xx, and every row a tenant sees must be one of its own (names and numbers carry its slug).
 * Writes are counted as acknowledged on their 2xx, so a test can compare them with the rows stored.
 */
export interface TrafficOptions {
  /** Concurrent request loops per tenant. */
  workersPerTenant: number;
  /** Requests per loop: creates, lists and gets of projects and invoices, in turn. */
  requestsPerWorker: number;
  /** Part of every name and number written, so runs over the same tenants never collide (invoice numbers are unique). */
  runTag?: string;
}

export interface TrafficFailure {
  tenant: string;
  request: string;
  answer: string;
}

export interface TrafficReport {
  requests: number;
  reads: number;
  writes: number;
  /** Answers other than the expected 2xx (or no answer). */
  failures: TrafficFailure[];
  /** Rows a tenant was shown that are not its own. */
  foreignRows: TrafficFailure[];
  /** Acknowledged creates per tenant id. */
  acknowledged: Map<string, { projects: number; invoices: number }>;
  wallMs: number;
}

const show = (a: ApiAnswer) => (a.status === 0 ? `no answer (${a.error})` : `${a.status} ${JSON.stringify(a.body)}`.slice(0, 300));

/** The prefix of every name and number `tenant` writes: a row without it in its lists is foreign. */
export const rowPrefix = (tenant: Pick<OnboardedTenant, 'slug'>): string => `${tenant.slug}/`;

export async function runTenantTraffic(target: ApiTarget, tenants: OnboardedTenant[], opts: TrafficOptions): Promise<TrafficReport> {
  const report: TrafficReport = { requests: 0, reads: 0, writes: 0, failures: [], foreignRows: [], acknowledged: new Map(), wallMs: 0 };
  for (const t of tenants) report.acknowledged.set(t.id, { projects: 0, invoices: 0 });
  const started = performance.now();

  const loop = async (tenant: OnboardedTenant, worker: number) => {
    const headers = tenantHeaders(tenant);
    const prefix = rowPrefix(tenant);
    const acked = report.acknowledged.get(tenant.id)!;
    const projectIds: string[] = [];
    const call = async (request: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer | undefined> => {
      report.requests++;
      if (method === 'GET') report.reads++;
      else report.writes++;
      const answer = await callApi(target, method, path, { headers, body });
      if (answer.status < 200 || answer.status > 299) {
        report.failures.push({ tenant: tenant.slug, request, answer: show(answer) });
        return undefined;
      }
      return answer;
    };
    const checkOwn = (request: string, items: Array<{ name?: string; number?: string }>) => {
      for (const item of items) {
        const label = item.name ?? item.number ?? '';
        if (!label.startsWith(prefix)) report.foreignRows.push({ tenant: tenant.slug, request, answer: label });
      }
    };
    for (let n = 0; n < opts.requestsPerWorker; n++) {
      switch (n % 5) {
        case 0: {
          const created = await call('POST /projects', 'POST', '/projects', { name: `${prefix}${opts.runTag ?? ''}w${worker}-${n}` });
          if (created) {
            acked.projects++;
            projectIds.push(created.body.id);
          }
          break;
        }
        case 1: {
          const listed = await call('GET /projects', 'GET', '/projects?limit=20');
          if (listed) checkOwn('GET /projects', listed.body.items);
          break;
        }
        case 2: {
          const id = projectIds[projectIds.length - 1];
          if (!id) break;
          const got = await call('GET /projects/:id', 'GET', `/projects/${id}`);
          if (got) checkOwn('GET /projects/:id', [got.body]);
          break;
        }
        case 3: {
          const created = await call('POST /invoices', 'POST', '/invoices', { number: `${prefix}${opts.runTag ?? ''}w${worker}-${n}`, amount: 100 + n, currency: 'EUR' });
          if (created) acked.invoices++;
          break;
        }
        default: {
          const listed = await call('GET /invoices', 'GET', '/invoices?limit=20');
          if (listed) checkOwn('GET /invoices', listed.body.items);
        }
      }
    }
  };

  await Promise.all(tenants.flatMap((tenant) => Array.from({ length: opts.workersPerTenant }, (_, w) => loop(tenant, w))));
  report.wallMs = performance.now() - started;
  return report;
}
