import type { OnboardedTenant, TestApp } from './test-app';

/** The headers that make a request `who`'s: its wire tenant and its bearer token. */
export const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });

export type ForeignRoute<O> = [name: string, request: (victim: O) => [method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: object]];

export interface ForeignProbe {
  /** Tier pairs covered, as `caller->victim`. */
  pairs: Set<string>;
  checked: number;
  /** Every answer that was not a 404 with `error` (or a `*_not_found` code when none is given). */
  failures: string[];
}

/**
 * Calls every route as every tenant with every other tenant's ids. The caller's own credentials are
 * valid, so only the resource layer can answer — and it must answer 404 as for a missing id.
 */
export async function probeForeignIds<O extends { tenant: OnboardedTenant }>(
  t: TestApp,
  owned: O[],
  routes: Array<ForeignRoute<O>>,
  error?: string,
): Promise<ForeignProbe> {
  const probe: ForeignProbe = { pairs: new Set(), checked: 0, failures: [] };
  for (const caller of owned) {
    for (const victim of owned) {
      if (caller === victim) continue;
      probe.pairs.add(`${caller.tenant.tier}->${victim.tenant.tier}`);
      for (const [name, route] of routes) {
        const [method, path, body] = route(victim);
        let req = t.http()[method](path).set(as(caller.tenant));
        if (body) req = req.send(body);
        const res = await req;
        probe.checked++;
        const code = String(res.body?.error);
        if (res.status !== 404 || (error ? code !== error : !code.endsWith('_not_found'))) {
          probe.failures.push(`${caller.tenant.tier}->${victim.tenant.tier} ${name}: ${res.status} ${JSON.stringify(res.body)}`);
        }
      }
    }
  }
  return probe;
}
