import { Injectable } from '@nestjs/common';
import { applyKeysetWindow, type KeysetWindow } from '#strata/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { Project } from './project.entity';
import { hydrateReturnedRow } from './returned-row.hydrator';

export interface ProjectChanges {
  name?: string;
  description?: string | null;
}

/**
 * One query per method, on the open tenant transaction. Every statement names tenant_id from the
 * context explicitly; RLS is the second line, not the only one.
 */
@Injectable()
export class ProjectsRepository {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
  ) {}

  async insert(fields: { name: string; description: string | null }): Promise<Project> {
    const project = this.connections.manager.create(Project, { ...fields, tenantId: this.context.tenant.id });
    // INSERT … RETURNING fills id, createdAt and updatedAt into `project`.
    await this.connections.manager.insert(Project, project);
    return project;
  }

  findById(id: string): Promise<Project | null> {
    return this.connections.manager.findOneBy(Project, { tenantId: this.context.tenant.id, id });
  }

  exists(id: string): Promise<boolean> {
    return this.connections.manager.existsBy(Project, { tenantId: this.context.tenant.id, id });
  }

  /** `namePrefix`: case-insensitive; starts_with() rather than LIKE, so `%` and `_` in it are plain characters. */
  list(window: KeysetWindow, namePrefix?: string): Promise<Project[]> {
    const query = this.connections.manager
      .createQueryBuilder(Project, 'project')
      .where('project.tenantId = :tenantId', { tenantId: this.context.tenant.id });
    if (namePrefix !== undefined) query.andWhere('starts_with(lower(project.name), lower(:namePrefix))', { namePrefix });
    return applyKeysetWindow(query, 'project', window).getMany();
  }

  /** The updated project, or null when the tenant has no project with this id. */
  async update(id: string, changes: ProjectChanges): Promise<Project | null> {
    const result = await this.connections.manager
      .createQueryBuilder()
      .update(Project)
      .set(changes)
      .where({ tenantId: this.context.tenant.id, id })
      .returning('*')
      .execute();
    const [row] = result.raw as Array<Record<string, unknown>>;
    return row ? hydrateReturnedRow(this.connections.manager, Project, row) : null;
  }

  /** False when the tenant has no project with this id. Its tasks go with it (ON DELETE CASCADE). */
  async delete(id: string): Promise<boolean> {
    const result = await this.connections.manager.delete(Project, { tenantId: this.context.tenant.id, id });
    return (result.affected ?? 0) > 0;
  }
}
