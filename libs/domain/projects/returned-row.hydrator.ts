import type { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';

/**
 * Builds an entity from a raw `UPDATE … RETURNING *` row (database column names, driver values).
 * TypeORM hydrates only SELECT results; this lets an update answer with the row in the same
 * statement instead of a second round trip to read it back.
 */
export function hydrateReturnedRow<T extends ObjectLiteral>(manager: EntityManager, target: EntityTarget<T>, row: Record<string, unknown>): T {
  const metadata = manager.dataSource.getMetadata(target);
  const entity = metadata.create() as T;
  for (const column of metadata.columns) {
    column.setEntityValue(entity, manager.dataSource.driver.prepareHydratedValue(row[column.databaseName], column));
  }
  return entity;
}
