import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
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
  @ApiProperty({ minLength: 1, maxLength: 200, pattern: NO_NUL })
  @IsString() @Length(1, 200) @Matches(NO_NUL, noNul)
  name: string;

  @ApiPropertyOptional({ type: String, nullable: true, maxLength: 5000, pattern: NO_NUL })
  @IsOptional() @IsString() @MaxLength(5000) @Matches(NO_NUL, noNul)
  description?: string | null;
}

@ApiSchema({ description: 'send at least one of `name`, `description`' })
export class UpdateProjectDto {
  // ValidateIf rather than IsOptional: `name: null` must fail here, not on the NOT NULL column.
  @ApiPropertyOptional({ minLength: 1, maxLength: 200, pattern: NO_NUL })
  @ValidateIf((o: UpdateProjectDto) => o.name !== undefined)
  @IsString() @Length(1, 200) @Matches(NO_NUL, noNul)
  name?: string;

  /** `null` clears the description. */
  @ApiPropertyOptional({ type: String, nullable: true, maxLength: 5000, pattern: NO_NUL, description: '`null` clears it' })
  @IsOptional() @IsString() @MaxLength(5000) @Matches(NO_NUL, noNul)
  description?: string | null;

  @AtLeastOneOf('name', 'description')
  readonly changes?: never;
}

export class CreateTaskDto {
  @ApiProperty({ minLength: 1, maxLength: 500, pattern: NO_NUL })
  @IsString() @Length(1, 500) @Matches(NO_NUL, noNul)
  title: string;

  @ApiPropertyOptional({ enum: TASK_STATUSES, default: 'todo' })
  @ValidateIf((o: CreateTaskDto) => o.status !== undefined)
  @IsIn(TASK_STATUSES, { message: `status must be one of ${TASK_STATUSES.join(', ')}` })
  status?: TaskStatus;
}

@ApiSchema({ description: 'send at least one of `title`, `status`' })
export class UpdateTaskDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 500, pattern: NO_NUL })
  @ValidateIf((o: UpdateTaskDto) => o.title !== undefined)
  @IsString() @Length(1, 500) @Matches(NO_NUL, noNul)
  title?: string;

  @ApiPropertyOptional({ enum: TASK_STATUSES })
  @ValidateIf((o: UpdateTaskDto) => o.status !== undefined)
  @IsIn(TASK_STATUSES, { message: `status must be one of ${TASK_STATUSES.join(', ')}` })
  status?: TaskStatus;

  @AtLeastOneOf('title', 'status')
  readonly changes?: never;
}

/** `GET /projects`: newest first, optionally only names starting with `q` (case-insensitive). */
export class ListProjectsQuery extends PageQuery {
  @ApiPropertyOptional({ minLength: 1, maxLength: 200, description: 'name prefix, case-insensitive: `?q=apo` finds "Apollo"' })
  @IsOptional() @IsString() @Length(1, 200) @Matches(NO_NUL, { message: 'q must not contain NUL characters' })
  q?: string;
}

/** `GET /projects/:id/tasks`: newest first, optionally one status. */
export class ListTasksQuery extends PageQuery {
  @ApiPropertyOptional({ enum: TASK_STATUSES })
  @IsOptional()
  @IsIn(TASK_STATUSES, { message: `status must be one of ${TASK_STATUSES.join(', ')}` })
  status?: TaskStatus;
}

/** A project as the API shows it: the tenant is implied by the request, never echoed. */
@ApiSchema({ name: 'Project' })
export class ProjectView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ type: String, nullable: true }) description: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt: Date;
}

@ApiSchema({ name: 'Task' })
export class TaskView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) projectId: string;
  @ApiProperty() title: string;
  @ApiProperty({ enum: TASK_STATUSES }) status: TaskStatus;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt: Date;
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
