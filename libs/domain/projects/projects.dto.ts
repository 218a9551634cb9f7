import { IsIn, IsOptional, IsString, Length, Matches, MaxLength, ValidateBy, ValidateIf, type ValidationArguments } from 'class-validator';
import { PageQuery } from '#strata/common';
import type { Project } from './project.entity';
import { TASK_STATUSES, type Task, type TaskStatus } from './task.entity';

// Postgres text cannot hold NUL; refused here so it is a 400, not a driver error.
const NO_NUL = /^[^\u0000]*$/;
const noNul = { message: '$property must not contain NUL characters' };

/**
 * For PATCH bodies whose fields are all optional: `{}` changes nothing and is refused.
 * class-validator has no class-level rules, so this hangs off a property that exists only to carry
 * it; a client that sends that property is refused as well.
 */
function AtLeastOneOf(...fields: string[]): PropertyDecorator {
  return ValidateBy({
    name: 'atLeastOneOf',
    constraints: fields,
    validator: {
      validate: (value: unknown, args?: ValidationArguments) =>
        value === undefined && fields.some((f) => (args?.object as Record<string, unknown>)[f] !== undefined),
      defaultMessage: () => `send at least one of ${fields.join(', ')}`,
    },
  });
}

export class CreateProjectDto {
  @IsString() @Length(1, 200) @Matches(NO_NUL, noNul)
  name: string;

  @IsOptional() @IsString() @MaxLength(5000) @Matches(NO_NUL, noNul)
  description?: string | null;
}

export class UpdateProjectDto {
  // ValidateIf rather than IsOptional: `name: null` must fail here, not on the NOT NULL column.
  @ValidateIf((o: UpdateProjectDto) => o.name !== undefined)
  @IsString() @Length(1, 200) @Matches(NO_NUL, noNul)
  name?: string;

  /** `null` clears the description. */
  @IsOptional() @IsString() @MaxLength(5000) @Matches(NO_NUL, noNul)
  description?: string | null;

  @AtLeastOneOf('name', 'description')
  readonly changes?: never;
}

export class CreateTaskDto {
  @IsString() @Length(1, 500) @Matches(NO_NUL, noNul)
  title: string;

  @ValidateIf((o: CreateTaskDto) => o.status !== undefined)
  @IsIn(TASK_STATUSES, { message: `status must be one of ${TASK_STATUSES.join(', ')}` })
  status?: TaskStatus;
}

export class UpdateTaskDto {
  @ValidateIf((o: UpdateTaskDto) => o.title !== undefined)
  @IsString() @Length(1, 500) @Matches(NO_NUL, noNul)
  title?: string;

  @ValidateIf((o: UpdateTaskDto) => o.status !== undefined)
  @IsIn(TASK_STATUSES, { message: `status must be one of ${TASK_STATUSES.join(', ')}` })
  status?: TaskStatus;

  @AtLeastOneOf('title', 'status')
  readonly changes?: never;
}

/** `GET /projects`: paging only, for now. */
export class ListProjectsQuery extends PageQuery {}

/** `GET /projects/:id/tasks`: paging only, for now. */
export class ListTasksQuery extends PageQuery {}

/** A project as the API shows it: the tenant is implied by the request, never echoed. */
export interface ProjectView {
  id: string;
  name: string;
  description: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface TaskView {
  id: string;
  projectId: string;
  title: string;
  status: TaskStatus;
  createdAt: Date;
  updatedAt: Date;
}

export const toProjectView = (p: Project): ProjectView => ({
  id: p.id,
  name: p.name,
  description: p.description,
  createdAt: p.createdAt,
  updatedAt: p.updatedAt,
});

export const toTaskView = (t: Task): TaskView => ({
  id: t.id,
  projectId: t.projectId,
  title: t.title,
  status: t.status,
  createdAt: t.createdAt,
  updatedAt: t.updatedAt,
});
