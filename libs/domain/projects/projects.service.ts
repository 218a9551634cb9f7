import { Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { QueryFailedError } from 'typeorm';
import { DEFAULT_PAGE_LIMIT, filterScope, keysetWindow, notFound, toPage, type Page } from '#strata/common';
import type { TaskStatus } from './task.entity';
import { TenantConnectionManager } from '#strata/tenancy';
import { PlanLimits } from '#strata/plans';
import type { CreateProjectDto, CreateTaskDto, UpdateProjectDto, UpdateTaskDto } from './projects.dto';
import { toProjectView, toTaskView, type ProjectView, type TaskView } from './projects.dto';
import { ProjectsErrorCode } from './projects.errors';
import { ProjectsRepository, type ProjectChanges } from './projects.repository';
import { TasksRepository, type TaskChanges } from './tasks.repository';

const projectNotFound = () => notFound(ProjectsErrorCode.projectNotFound, 'project not found');
const taskNotFound = () => notFound(ProjectsErrorCode.taskNotFound, 'task not found');

/**
 * Emitted inside the changing transaction (`emitAsync`, awaited): listeners such as the webhooks'
 * outbox write in the same unit of work, and one that throws rolls the change back. created/updated
 * carry the ProjectView/TaskView, deleted `{ id }` (a project's tasks go with it without events).
 */
export const PROJECT_EVENTS = { created: 'project.created', updated: 'project.updated', deleted: 'project.deleted' } as const;
export const TASK_EVENTS = { created: 'task.created', updated: 'task.updated', deleted: 'task.deleted' } as const;

const FOREIGN_KEY_VIOLATION = '23503';
const sqlState = (err: unknown): string | undefined =>
  err instanceof QueryFailedError ? (err.driverError as { code?: string } | undefined)?.code : undefined;

/**
 * Projects and their tasks. Each use case is one tenant transaction; "not this tenant's" and
 * "does not exist" are the same 404, so ids of other tenants reveal nothing.
 */
@Injectable()
export class ProjectsService {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly projects: ProjectsRepository,
    private readonly tasks: TasksRepository,
    private readonly events: EventEmitter2,
    private readonly limits: PlanLimits,
  ) {}

  /** Newest first. A malformed cursor is refused before any connection is taken. */
  async list(limit = DEFAULT_PAGE_LIMIT, cursor?: string, namePrefix?: string): Promise<Page<ProjectView>> {
    // A cursor continues only the list it was issued for (another prefix would skip or repeat rows).
    const scope = filterScope({ q: namePrefix });
    const window = keysetWindow({ limit, cursor }, scope);
    const rows = await this.connections.read(() => this.projects.list(window, namePrefix));
    return toPage(rows, limit, toProjectView, scope);
  }

  async create(input: CreateProjectDto): Promise<ProjectView> {
    const project = await this.connections.transaction(async () => {
      // First, so a tenant at its plan's limit is refused before anything is written (402).
      await this.limits.reserve('projects');
      const created = await this.projects.insert({ name: input.name, description: input.description ?? null });
      await this.events.emitAsync(PROJECT_EVENTS.created, toProjectView(created));
      return created;
    });
    return toProjectView(project);
  }

  async get(id: string): Promise<ProjectView> {
    const project = await this.connections.read(() => this.projects.findById(id));
    if (!project) throw projectNotFound();
    return toProjectView(project);
  }

  async update(id: string, input: UpdateProjectDto): Promise<ProjectView> {
    const changes: ProjectChanges = {};
    if (input.name !== undefined) changes.name = input.name;
    if (input.description !== undefined) changes.description = input.description;
    const project = await this.connections.transaction(async () => {
      const updated = await this.projects.update(id, changes);
      if (updated) await this.events.emitAsync(PROJECT_EVENTS.updated, toProjectView(updated));
      return updated;
    });
    if (!project) throw projectNotFound();
    return toProjectView(project);
  }

  async remove(id: string): Promise<void> {
    const deleted = await this.connections.transaction(async () => {
      const gone = await this.projects.delete(id);
      if (gone) {
        await this.limits.release('projects');
        await this.events.emitAsync(PROJECT_EVENTS.deleted, { id });
      }
      return gone;
    });
    if (!deleted) throw projectNotFound();
  }

  /** 404 when the project is not the tenant's, rather than an empty list that would hide a typo. */
  async listTasks(projectId: string, limit = DEFAULT_PAGE_LIMIT, cursor?: string, status?: TaskStatus): Promise<Page<TaskView>> {
    const scope = filterScope({ status });
    const window = keysetWindow({ limit, cursor }, scope);
    const rows = await this.connections.read(async () => {
      if (!(await this.projects.exists(projectId))) throw projectNotFound();
      return this.tasks.listByProject(projectId, window, status);
    });
    return toPage(rows, limit, toTaskView, scope);
  }

  async createTask(projectId: string, input: CreateTaskDto): Promise<TaskView> {
    try {
      const task = await this.connections.transaction(async () => {
        if (!(await this.projects.exists(projectId))) throw projectNotFound();
        const created = await this.tasks.insert({ projectId, title: input.title, status: input.status ?? 'todo' });
        await this.events.emitAsync(TASK_EVENTS.created, toTaskView(created));
        return created;
      });
      return toTaskView(task);
    } catch (err) {
      // The project was deleted between the check and the insert: same answer as if it never was.
      if (sqlState(err) === FOREIGN_KEY_VIOLATION) throw projectNotFound();
      throw err;
    }
  }

  async getTask(id: string): Promise<TaskView> {
    const task = await this.connections.read(() => this.tasks.findById(id));
    if (!task) throw taskNotFound();
    return toTaskView(task);
  }

  async updateTask(id: string, input: UpdateTaskDto): Promise<TaskView> {
    const changes: TaskChanges = {};
    if (input.title !== undefined) changes.title = input.title;
    if (input.status !== undefined) changes.status = input.status;
    const task = await this.connections.transaction(async () => {
      const updated = await this.tasks.update(id, changes);
      if (updated) await this.events.emitAsync(TASK_EVENTS.updated, toTaskView(updated));
      return updated;
    });
    if (!task) throw taskNotFound();
    return toTaskView(task);
  }

  async removeTask(id: string): Promise<void> {
    const deleted = await this.connections.transaction(async () => {
      const gone = await this.tasks.delete(id);
      if (gone) await this.events.emitAsync(TASK_EVENTS.deleted, { id });
      return gone;
    });
    if (!deleted) throw taskNotFound();
  }
}
