import { Injectable } from '@nestjs/common';
import { applyKeysetWindow, type KeysetWindow } from '#strata/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { Task, type TaskStatus } from './task.entity';
import { hydrateReturnedRow } from './returned-row.hydrator';

export interface TaskChanges {
  title?: string;
  status?: TaskStatus;
}

/** Same rules as ProjectsRepository: one query per method, tenant_id from the context in each. */
@Injectable()
export class TasksRepository {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
  ) {}

  /**
   * Fails with a foreign-key violation (23503) when the project is not this tenant's: the key is
   * (tenant_id, project_id), so another tenant's project id can never satisfy it.
   */
  async insert(fields: { projectId: string; title: string; status: TaskStatus }): Promise<Task> {
    const task = this.connections.manager.create(Task, { ...fields, tenantId: this.context.tenant.id });
    await this.connections.manager.insert(Task, task);
    return task;
  }

  findById(id: string): Promise<Task | null> {
    return this.connections.manager.findOneBy(Task, { tenantId: this.context.tenant.id, id });
  }

  listByProject(projectId: string, window: KeysetWindow, status?: TaskStatus): Promise<Task[]> {
    const query = this.connections.manager
      .createQueryBuilder(Task, 'task')
      .where('task.tenantId = :tenantId AND task.projectId = :projectId', { tenantId: this.context.tenant.id, projectId });
    if (status) query.andWhere('task.status = :status', { status });
    return applyKeysetWindow(query, 'task', window).getMany();
  }

  async update(id: string, changes: TaskChanges): Promise<Task | null> {
    const result = await this.connections.manager
      .createQueryBuilder()
      .update(Task)
      .set(changes)
      .where({ tenantId: this.context.tenant.id, id })
      .returning('*')
      .execute();
    const [row] = result.raw as Array<Record<string, unknown>>;
    return row ? hydrateReturnedRow(this.connections.manager, Task, row) : null;
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.connections.manager.delete(Task, { tenantId: this.context.tenant.id, id });
    return (result.affected ?? 0) > 0;
  }
}
