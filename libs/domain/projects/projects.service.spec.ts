import { randomUUID } from 'node:crypto';
import { QueryFailedError, type EntityManager } from 'typeorm';
import { encodeCursor, type KeysetWindow } from '#strata/common';
import type { TenantConnectionManager } from '#strata/tenancy';
import type { PlanLimits } from '#strata/plans';
import type { Project } from './project.entity';
import type { Task } from './task.entity';
import type { ProjectChanges, ProjectsRepository } from './projects.repository';
import type { TaskChanges, TasksRepository } from './tasks.repository';
import { ProjectsService } from './projects.service';
import { apiError } from '../../../test/support/api-error';
import { EventEmitter2 } from '@nestjs/event-emitter';

type Public<T> = Pick<T, keyof T>;

/** Runs work at once and records how many units of work a use case opened. */
class FakeTransactions {
  opened = 0;
  /** The kind of each unit opened, in order. */
  readonly units: Array<'read' | 'transaction'> = [];
  private depth = 0;

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.unit('transaction', work);
  }

  read<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.unit('read', work);
  }

  private async unit<T>(kind: 'read' | 'transaction', work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.depth === 0) {
      this.opened++;
      this.units.push(kind);
    }
    this.depth++;
    try {
      return await work({} as EntityManager);
    } finally {
      this.depth--;
    }
  }

  /** The real `manager` getter throws outside a transaction; so do the fakes. */
  assertOpen(): void {
    if (this.depth === 0) throw new Error('repository called outside a tenant transaction');
  }
}

/** One tenant's rows, as its repositories see them; other tenants' rows simply are not there. */
class FakeTenantData {
  projects = new Map<string, Project>();
  tasks = new Map<string, Task>();
  private clock = Date.UTC(2026, 0, 1);
  now = () => new Date(this.clock++);
}

function newestFirst<R extends { createdAt: Date; id: string }>(rows: R[], window: KeysetWindow): R[] {
  const key = (r: { createdAt: Date; id: string }) => `${r.createdAt.toISOString()}|${r.id}`;
  return rows
    .filter((r) => !window.after || key(r) < key(window.after))
    .sort((a, b) => (key(a) < key(b) ? 1 : -1))
    .slice(0, window.take);
}

const foreignKeyViolation = () =>
  new QueryFailedError('INSERT INTO "tasks" …', [], Object.assign(new Error('violates foreign key constraint'), { code: '23503' }));

class FakeProjectsRepository implements Public<ProjectsRepository> {
  constructor(private readonly tx: FakeTransactions, private readonly data: FakeTenantData) {}

  async insert(fields: { name: string; description: string | null }): Promise<Project> {
    this.tx.assertOpen();
    const now = this.data.now();
    const project = { ...fields, tenantId: 'tenant', id: randomUUID(), createdAt: now, updatedAt: now };
    this.data.projects.set(project.id, project);
    return { ...project };
  }

  async findById(id: string): Promise<Project | null> {
    this.tx.assertOpen();
    const found = this.data.projects.get(id);
    return found ? { ...found } : null;
  }

  async exists(id: string): Promise<boolean> {
    this.tx.assertOpen();
    return this.data.projects.has(id);
  }

  async list(window: KeysetWindow): Promise<Project[]> {
    this.tx.assertOpen();
    return newestFirst([...this.data.projects.values()], window);
  }

  async update(id: string, changes: ProjectChanges): Promise<Project | null> {
    this.tx.assertOpen();
    const found = this.data.projects.get(id);
    if (!found) return null;
    Object.assign(found, changes, { updatedAt: this.data.now() });
    return { ...found };
  }

  async delete(id: string): Promise<boolean> {
    this.tx.assertOpen();
    if (!this.data.projects.delete(id)) return false;
    for (const [taskId, task] of this.data.tasks) if (task.projectId === id) this.data.tasks.delete(taskId);
    return true;
  }
}

class FakeTasksRepository implements Public<TasksRepository> {
  inserts = 0;
  constructor(private readonly tx: FakeTransactions, private readonly data: FakeTenantData) {}

  async insert(fields: { projectId: string; title: string; status: Task['status'] }): Promise<Task> {
    this.tx.assertOpen();
    this.inserts++;
    // What the composite foreign key does in the database.
    if (!this.data.projects.has(fields.projectId)) throw foreignKeyViolation();
    const now = this.data.now();
    const task = { ...fields, tenantId: 'tenant', id: randomUUID(), createdAt: now, updatedAt: now };
    this.data.tasks.set(task.id, task);
    return { ...task };
  }

  async findById(id: string): Promise<Task | null> {
    this.tx.assertOpen();
    const found = this.data.tasks.get(id);
    return found ? { ...found } : null;
  }

  async listByProject(projectId: string, window: KeysetWindow): Promise<Task[]> {
    this.tx.assertOpen();
    return newestFirst([...this.data.tasks.values()].filter((t) => t.projectId === projectId), window);
  }

  async update(id: string, changes: TaskChanges): Promise<Task | null> {
    this.tx.assertOpen();
    const found = this.data.tasks.get(id);
    if (!found) return null;
    Object.assign(found, changes, { updatedAt: this.data.now() });
    return { ...found };
  }

  async delete(id: string): Promise<boolean> {
    this.tx.assertOpen();
    return this.data.tasks.delete(id);
  }
}

function setup() {
  const tx = new FakeTransactions();
  const data = new FakeTenantData();
  const projects = new FakeProjectsRepository(tx, data);
  const tasks = new FakeTasksRepository(tx, data);
  const service = new ProjectsService(
    tx as unknown as TenantConnectionManager,
    projects as unknown as ProjectsRepository,
    tasks as unknown as TasksRepository,
    // A real emitter without listeners: emitAsync resolves at once.
    new EventEmitter2(),
    // Quotas are PlanLimits' own tests (test/e2e/plan-limits.e2e-spec.ts); here every reservation passes.
    { reserve: async () => tx.assertOpen(), release: async () => tx.assertOpen() } as unknown as PlanLimits,
  );
  return { service, tx, data, projects, tasks };
}

const MISSING = '00000000-0000-4000-8000-000000000000';

describe('ProjectsService', () => {
  it('creates a project in one transaction and never shows the tenant', async () => {
    const { service, tx } = setup();
    const view = await service.create({ name: 'Apollo' });
    expect(view).toEqual({ id: expect.any(String), name: 'Apollo', description: null, createdAt: expect.any(Date), updatedAt: expect.any(Date) });
    expect(view).not.toHaveProperty('tenantId');
    expect(tx.opened).toBe(1);
  });

  it('reads through read units and writes through transactions, one unit per use case', async () => {
    const { service, tx } = setup();
    const project = await service.create({ name: 'Apollo' });
    const task = await service.createTask(project.id, { title: 'launch' });
    await service.get(project.id);
    await service.list();
    await service.listTasks(project.id);
    await service.getTask(task.id);
    await service.update(project.id, { name: 'Artemis' });
    await service.updateTask(task.id, { status: 'done' });
    await service.removeTask(task.id);
    await service.remove(project.id);
    expect(tx.units).toEqual(['transaction', 'transaction', 'read', 'read', 'read', 'read', 'transaction', 'transaction', 'transaction', 'transaction']);
  });

  it('answers 404 project_not_found for a project the tenant does not have', async () => {
    const { service } = setup();
    expect(await apiError(service.get(MISSING))).toBe('404 project_not_found');
    expect(await apiError(service.update(MISSING, { name: 'x' }))).toBe('404 project_not_found');
    expect(await apiError(service.remove(MISSING))).toBe('404 project_not_found');
    expect(await apiError(service.listTasks(MISSING))).toBe('404 project_not_found');
  });

  it('changes only the fields a patch sends', async () => {
    const { service } = setup();
    const created = await service.create({ name: 'Apollo', description: 'moon' });
    const patched = await service.update(created.id, { name: 'Artemis' });
    expect(patched).toMatchObject({ id: created.id, name: 'Artemis', description: 'moon' });
    expect(await service.update(created.id, { description: null })).toMatchObject({ name: 'Artemis', description: null });
  });

  it('creating a task under a missing project is 404 project_not_found and inserts nothing', async () => {
    const { service, tasks, tx } = setup();
    expect(await apiError(service.createTask(MISSING, { title: 'orphan' }))).toBe('404 project_not_found');
    expect(tasks.inserts).toBe(0);
    expect(tx.opened).toBe(1);
  });

  it('turns a foreign-key violation on a concurrently deleted project into 404 project_not_found', async () => {
    const { service, projects, tasks } = setup();
    // The project passed the existence check, then went away before the insert.
    jest.spyOn(projects, 'exists').mockResolvedValueOnce(true);
    expect(await apiError(service.createTask(MISSING, { title: 'late' }))).toBe('404 project_not_found');
    expect(tasks.inserts).toBe(1);
  });

  it('checks the project and inserts the task in the same transaction, defaulting status to todo', async () => {
    const { service, tx } = setup();
    const project = await service.create({ name: 'With tasks' });
    tx.opened = 0;
    const task = await service.createTask(project.id, { title: 'write tests' });
    expect(task).toEqual({
      id: expect.any(String),
      projectId: project.id,
      title: 'write tests',
      status: 'todo',
      createdAt: expect.any(Date),
      updatedAt: expect.any(Date),
    });
    expect(tx.opened).toBe(1);
  });

  it('lets other errors of the task insert through unchanged', async () => {
    const { service, tasks } = setup();
    const project = await service.create({ name: 'p' });
    const boom = new Error('connection reset');
    jest.spyOn(tasks, 'insert').mockRejectedValueOnce(boom);
    await expect(service.createTask(project.id, { title: 't' })).rejects.toBe(boom);
  });

  it('answers 404 task_not_found for a task the tenant does not have', async () => {
    const { service } = setup();
    expect(await apiError(service.getTask(MISSING))).toBe('404 task_not_found');
    expect(await apiError(service.updateTask(MISSING, { status: 'done' }))).toBe('404 task_not_found');
    expect(await apiError(service.removeTask(MISSING))).toBe('404 task_not_found');
  });

  it('deletes a project with its tasks', async () => {
    const { service } = setup();
    const project = await service.create({ name: 'p' });
    const task = await service.createTask(project.id, { title: 't' });
    await service.remove(project.id);
    expect(await apiError(service.getTask(task.id))).toBe('404 task_not_found');
  });

  it('pages projects newest first without gaps or repeats', async () => {
    const { service } = setup();
    const names = ['a', 'b', 'c', 'd', 'e'];
    for (const name of names) await service.create({ name });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await service.list(2, cursor);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((p) => p.name));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([...names].reverse());
  });

  it('refuses a malformed cursor before opening a transaction', async () => {
    const { service, tx } = setup();
    expect(await apiError(service.list(20, 'not a cursor'))).toBe('400 invalid_cursor');
    expect(await apiError(service.listTasks(MISSING, 20, '%%%'))).toBe('400 invalid_cursor');
    expect(tx.opened).toBe(0);
  });

  it('pages a project’s tasks from a cursor it issued', async () => {
    const { service } = setup();
    const project = await service.create({ name: 'p' });
    for (const title of ['1', '2', '3']) await service.createTask(project.id, { title });
    const first = await service.listTasks(project.id, 2);
    expect(first.items.map((t) => t.title)).toEqual(['3', '2']);
    expect(first.nextCursor).toBe(encodeCursor(first.items[1]));
    const second = await service.listTasks(project.id, 2, first.nextCursor!);
    expect(second).toEqual({ items: [expect.objectContaining({ title: '1' })], nextCursor: null });
  });
});
