import { Injectable } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { DEFAULT_PAGE_LIMIT, keysetWindow, notFound, toPage, type Page } from '#strata/common';
import { TenantConnectionManager } from '#strata/tenancy';
import type { CreateProjectDto, CreateTaskDto, UpdateProjectDto, UpdateTaskDto } from './projects.dto';
import { toProjectView, toTaskView, type ProjectView, type TaskView } from './projects.dto';
import { ProjectsRepository, type ProjectChanges } from './projects.repository';
import { TasksRepository, type TaskChanges } from './tasks.repository';

const projectNotFound = () => notFound('project_not_found', 'project not found');
const taskNotFound = () => notFound('task_not_found', 'task not found');

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
  ) {}

  /** Newest first. A malformed cursor is refused before any connection is taken. */
  async list(limit = DEFAULT_PAGE_LIMIT, cursor?: string): Promise<Page<ProjectView>> {
    const window = keysetWindow({ limit, cursor });
    const rows = await this.connections.read(() => this.projects.list(window));
    return toPage(rows, limit, toProjectView);
  }

  async create(input: CreateProjectDto): Promise<ProjectView> {
    const project = await this.connections.transaction(() =>
      this.projects.insert({ name: input.name, description: input.description ?? null }),
    );
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
    const project = await this.connections.transaction(() => this.projects.update(id, changes));
    if (!project) throw projectNotFound();
    return toProjectView(project);
  }

  async remove(id: string): Promise<void> {
    const deleted = await this.connections.transaction(() => this.projects.delete(id));
    if (!deleted) throw projectNotFound();
  }

  /** 404 when the project is not the tenant's, rather than an empty list that would hide a typo. */
  async listTasks(projectId: string, limit = DEFAULT_PAGE_LIMIT, cursor?: string): Promise<Page<TaskView>> {
    const window = keysetWindow({ limit, cursor });
    const rows = await this.connections.read(async () => {
      if (!(await this.projects.exists(projectId))) throw projectNotFound();
      return this.tasks.listByProject(projectId, window);
    });
    return toPage(rows, limit, toTaskView);
  }

  async createTask(projectId: string, input: CreateTaskDto): Promise<TaskView> {
    try {
      const task = await this.connections.transaction(async () => {
        if (!(await this.projects.exists(projectId))) throw projectNotFound();
        return this.tasks.insert({ projectId, title: input.title, status: input.status ?? 'todo' });
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
    const task = await this.connections.transaction(() => this.tasks.update(id, changes));
    if (!task) throw taskNotFound();
    return toTaskView(task);
  }

  async removeTask(id: string): Promise<void> {
    const deleted = await this.connections.transaction(() => this.tasks.delete(id));
    if (!deleted) throw taskNotFound();
  }
}
