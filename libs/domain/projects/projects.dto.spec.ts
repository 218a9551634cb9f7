import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { CreateProjectDto, CreateTaskDto, ListTasksQuery, UpdateProjectDto, UpdateTaskDto } from './projects.dto';

// Same options as the app's global ValidationPipe.
async function failedFields<T extends object>(type: new () => T, plain: Record<string, unknown>): Promise<string[]> {
  const errors = await validate(plainToInstance(type, plain), { whitelist: true, forbidNonWhitelisted: true });
  return errors.map((e) => e.property).sort();
}

describe('project bodies', () => {
  it('accepts a name with or without a description', async () => {
    expect(await failedFields(CreateProjectDto, { name: 'Apollo' })).toEqual([]);
    expect(await failedFields(CreateProjectDto, { name: 'Apollo', description: 'moon' })).toEqual([]);
    expect(await failedFields(CreateProjectDto, { name: 'Apollo', description: null })).toEqual([]);
  });

  it.each([{}, { name: '' }, { name: 42 }, { name: 'x'.repeat(201) }, { name: 'a\u0000b' }])('rejects the project name in %j', async (body) => {
    expect(await failedFields(CreateProjectDto, body)).toEqual(['name']);
  });

  it('rejects a description over 5000 characters', async () => {
    expect(await failedFields(CreateProjectDto, { name: 'ok', description: 'x'.repeat(5001) })).toEqual(['description']);
  });

  it('refuses a tenantId smuggled into the body', async () => {
    expect(await failedFields(CreateProjectDto, { name: 'ok', tenantId: '3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60' })).toEqual(['tenantId']);
  });

  it('accepts a patch of either field, and null to clear the description', async () => {
    expect(await failedFields(UpdateProjectDto, { name: 'Artemis' })).toEqual([]);
    expect(await failedFields(UpdateProjectDto, { description: null })).toEqual([]);
  });

  it('rejects an empty patch', async () => {
    expect(await failedFields(UpdateProjectDto, {})).toEqual(['changes']);
  });

  it('rejects a null name in a patch instead of letting the NOT NULL column fail', async () => {
    expect(await failedFields(UpdateProjectDto, { name: null })).toEqual(['name']);
  });

  it('rejects a client that sends the property carrying the at-least-one rule', async () => {
    expect(await failedFields(UpdateProjectDto, { name: 'x', changes: 1 })).toEqual(['changes']);
  });
});

describe('task bodies', () => {
  it('accepts a title with each known status or none', async () => {
    for (const status of ['todo', 'doing', 'done', undefined]) {
      expect(await failedFields(CreateTaskDto, { title: 't', status })).toEqual([]);
    }
  });

  it.each([{ title: 't', status: 'someday' }, { title: 't', status: null }])('rejects the status in %j', async (body) => {
    expect(await failedFields(CreateTaskDto, body)).toEqual(['status']);
  });

  it('rejects a missing or over-long title', async () => {
    expect(await failedFields(CreateTaskDto, {})).toEqual(['title']);
    expect(await failedFields(CreateTaskDto, { title: 'x'.repeat(501) })).toEqual(['title']);
  });

  it('rejects an empty task patch and accepts a status-only one', async () => {
    expect(await failedFields(UpdateTaskDto, {})).toEqual(['changes']);
    expect(await failedFields(UpdateTaskDto, { status: 'done' })).toEqual([]);
  });
});

describe('task list query', () => {
  it('inherits the page rules and takes one status of todo, doing, done', async () => {
    expect(await failedFields(ListTasksQuery, { limit: '101' })).toEqual(['limit']);
    expect(await failedFields(ListTasksQuery, { status: 'done' })).toEqual([]);
    expect(await failedFields(ListTasksQuery, { status: 'archived' })).toEqual(['status']);
    expect(await failedFields(ListTasksQuery, { sort: 'title' })).toEqual(['sort']);
  });
});
