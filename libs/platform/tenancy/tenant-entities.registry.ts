import type { EntitySchema, MixedList } from 'typeorm';

type EntityClass = Function | EntitySchema<unknown>;

// Filled by TenancyModule.forFeature() while modules are declared; read when the first tenant
// DataSource is created (lazily, on first use), by which time every domain module has registered.
const registered = new Set<EntityClass>();
let sealed = false;

export function registerTenantEntities(entities: EntityClass[]): void {
  const late = entities.filter((e) => !registered.has(e));
  if (sealed && late.length) {
    // Otherwise the entity would be silently missing from DataSources already built.
    throw new Error('TenancyModule.forFeature() called after the first tenant DataSource was created; import the module at startup');
  }
  for (const e of late) registered.add(e);
}

export function tenantEntities(): MixedList<Function | EntitySchema<unknown>> {
  sealed = true;
  return [...registered];
}
