import { Client, type ClientBase } from 'pg';
import { listFleetTargets, serverOf, type FleetTarget } from './fleet.targets';

export interface GuardrailViolation {
  /** Target key (`pool:main-pool`, `bridge:acme`, …) or `server:<host:port>` for role problems. */
  target: string;
  table?: string;
  problem: string;
  /** The target's database could not be reached: nothing is known of it, which is not a violation found. */
  unreachable?: true;
}

const TENANT_SETTING = 'app.tenant_id';

/**
 * The RLS guardrail for the schemas of one database: every table with a tenant_id column has RLS
 * enabled and forced, a policy for all commands whose USING and WITH CHECK both test
 * app.tenant_id, and no other permissive policy that would OR a way around it; the app role owns
 * nothing there. Catalog reads only, so any role can run it.
 */
export async function checkSchemas(client: ClientBase, appRole: string, targets: FleetTarget[]): Promise<GuardrailViolation[]> {
  const bySchema = new Map(targets.map((t) => [t.schema, t.key]));
  const rows = await client.query<{
    schema: string;
    table: string;
    has_tenant_id: boolean;
    rls: boolean;
    forced: boolean;
    owner: string;
    policies: Array<{ name: string; cmd: string; permissive: boolean; qual: string | null; check: string | null }> | null;
  }>(
    `SELECT n.nspname AS schema, c.relname AS table, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
            pg_get_userbyid(c.relowner) AS owner,
            EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS has_tenant_id,
            (SELECT json_agg(json_build_object('name', p.polname, 'cmd', p.polcmd, 'permissive', p.polpermissive,
                                               'qual', pg_get_expr(p.polqual, c.oid), 'check', pg_get_expr(p.polwithcheck, c.oid)))
               FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])
      ORDER BY 1, 2`,
    [[...bySchema.keys()]],
  );
  const out: GuardrailViolation[] = [];
  for (const r of rows.rows) {
    const target = bySchema.get(r.schema)!;
    const table = `${r.schema}.${r.table}`;
    if (r.owner === appRole) out.push({ target, table, problem: `owned by the app role ${appRole}` });
    if (!r.has_tenant_id) continue;
    if (!r.rls) out.push({ target, table, problem: 'row-level security is not enabled' });
    if (!r.forced) out.push({ target, table, problem: 'row-level security is not forced (the owner would bypass it)' });
    const policies = r.policies ?? [];
    const guarded = policies.some(
      (p) => p.cmd === '*' && p.permissive && p.qual?.includes(TENANT_SETTING) && p.check?.includes(TENANT_SETTING),
    );
    if (!guarded) out.push({ target, table, problem: `no policy for all commands with USING and WITH CHECK on ${TENANT_SETTING}` });
    for (const p of policies) {
      if (p.permissive && !(p.qual ?? p.check ?? '').includes(TENANT_SETTING)) {
        out.push({ target, table, problem: `permissive policy ${p.name} does not test ${TENANT_SETTING}` });
      }
    }
  }
  return out;
}

/** The app role may not be a superuser or bypass RLS, directly or through a role it belongs to. */
export async function checkAppRole(client: ClientBase, appRole: string, server: string): Promise<GuardrailViolation[]> {
  const rows = await client.query<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean }>(
    `SELECT r.rolname, r.rolsuper, r.rolbypassrls FROM pg_roles r
      WHERE pg_has_role($1, r.oid, 'MEMBER') AND (r.rolsuper OR r.rolbypassrls)`,
    [appRole],
  );
  return rows.rows.map((r) => ({
    target: `server:${server}`,
    problem: `app role ${appRole} ${r.rolname === appRole ? 'is' : `inherits ${r.rolname}, which is`} ${r.rolsuper ? 'SUPERUSER' : 'BYPASSRLS'}`,
  }));
}

export interface FleetCheckOptions {
  /** Control-plane connection URL; its credentials are used on every server. */
  url: string;
  appRole: string;
  concurrency?: number;
}

/** The guardrail over every target of the fleet: one catalog query per database, bounded concurrency. */
export async function checkFleetGuardrails(opts: FleetCheckOptions): Promise<GuardrailViolation[]> {
  const control = new Client({ connectionString: opts.url, application_name: 'strata-guardrails' });
  await control.connect();
  let targets: FleetTarget[];
  try {
    targets = await listFleetTargets(control);
  } finally {
    await control.end();
  }
  const byDatabase = new Map<string, FleetTarget[]>();
  for (const t of targets) {
    const k = `${serverOf(t)}/${t.database}`;
    if (!byDatabase.has(k)) byDatabase.set(k, []);
    byDatabase.get(k)!.push(t);
  }
  const servers = new Set<string>();
  const out: GuardrailViolation[] = [];
  const queue = [...byDatabase.values()];
  const worker = async () => {
    for (let group = queue.shift(); group; group = queue.shift()) {
      const url = new URL(opts.url);
      url.hostname = group[0].host;
      url.port = String(group[0].port);
      url.pathname = `/${encodeURIComponent(group[0].database)}`;
      const client = new Client({ connectionString: url.toString(), application_name: 'strata-guardrails', connectionTimeoutMillis: 5000 });
      try {
        await client.connect();
        out.push(...(await checkSchemas(client, opts.appRole, group)));
        const server = serverOf(group[0]);
        if (!servers.has(server)) {
          servers.add(server);
          out.push(...(await checkAppRole(client, opts.appRole, server)));
        }
      } catch (err) {
        for (const t of group) out.push({ target: t.key, problem: `could not be checked: ${(err as Error).message}`, unreachable: true });
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  return out.sort((a, b) => a.target.localeCompare(b.target) || (a.table ?? '').localeCompare(b.table ?? ''));
}
