import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiPageResponse, UuidPipe, type Page } from '#strata/common';
import { Idempotent } from '#strata/idempotency';
import { CreateTaskDto, ListTasksQuery, TaskView, UpdateTaskDto } from './projects.dto';
import { ProjectsErrorCode } from './projects.errors';
import { ProjectsService } from './projects.service';
import { RequireRole } from '#strata/auth';

/** Every task route: nested under its project to list and create, flat by id otherwise. */
@Controller()
@ApiTags('tasks')
export class TasksController {
  constructor(private readonly projects: ProjectsService) {}

  @Get('projects/:id/tasks')
  @RequireRole('member')
  @ApiPageResponse(TaskView)
  @ApiErrors({ 404: [ProjectsErrorCode.projectNotFound] })
  list(@Param('id', UuidPipe) projectId: string, @Query() query: ListTasksQuery): Promise<Page<TaskView>> {
    return this.projects.listTasks(projectId, query.limit, query.cursor, query.status);
  }

  @Post('projects/:id/tasks')
  @RequireRole('member')
  @Idempotent()
  @ApiCreatedResponse({ type: TaskView })
  @ApiErrors({ 404: [ProjectsErrorCode.projectNotFound] })
  create(@Param('id', UuidPipe) projectId: string, @Body() body: CreateTaskDto): Promise<TaskView> {
    return this.projects.createTask(projectId, body);
  }

  @Get('tasks/:id')
  @RequireRole('member')
  @ApiOkResponse({ type: TaskView })
  @ApiErrors({ 404: [ProjectsErrorCode.taskNotFound] })
  get(@Param('id', UuidPipe) id: string): Promise<TaskView> {
    return this.projects.getTask(id);
  }

  @Patch('tasks/:id')
  @RequireRole('member')
  @ApiOkResponse({ type: TaskView })
  @ApiErrors({ 404: [ProjectsErrorCode.taskNotFound] })
  update(@Param('id', UuidPipe) id: string, @Body() body: UpdateTaskDto): Promise<TaskView> {
    return this.projects.updateTask(id, body);
  }

  @Delete('tasks/:id')
  @RequireRole('admin')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'deleted' })
  @ApiErrors({ 404: [ProjectsErrorCode.taskNotFound] })
  remove(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.projects.removeTask(id);
  }
}
