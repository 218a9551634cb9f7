import type { EntitySchema, MixedList } from 'typeorm';

type EntityClass = Function | EntitySchema<unknown>;

// Filled by TenancyModule.forFeature() while modules are declared; read when the first tenant
// DataSource is created (lazily, on first use), by which time every domain module has registered.
const registered = new Set<EntityClass>();

export function registerTenantEntities(entities: EntityClass[]): void {
  for (const e of entities) registered.add(e);
}

export function tenantEntities(): MixedList<Function | EntitySchema<unknown>> {
  return [...registered];
}
