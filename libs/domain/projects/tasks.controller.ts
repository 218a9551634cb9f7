import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { UuidPipe, type Page } from '#strata/common';
import { CreateTaskDto, ListTasksQuery, UpdateTaskDto, type TaskView } from './projects.dto';
import { ProjectsService } from './projects.service';

/** Every task route: nested under its project to list and create, flat by id otherwise. */
@Controller()
export class TasksController {
  constructor(private readonly projects: ProjectsService) {}

  @Get('projects/:id/tasks')
  list(@Param('id', UuidPipe) projectId: string, @Query() query: ListTasksQuery): Promise<Page<TaskView>> {
    return this.projects.listTasks(projectId, query.limit, query.cursor);
  }

  @Post('projects/:id/tasks')
  create(@Param('id', UuidPipe) projectId: string, @Body() body: CreateTaskDto): Promise<TaskView> {
    return this.projects.createTask(projectId, body);
  }

  @Get('tasks/:id')
  get(@Param('id', UuidPipe) id: string): Promise<TaskView> {
    return this.projects.getTask(id);
  }

  @Patch('tasks/:id')
  update(@Param('id', UuidPipe) id: string, @Body() body: UpdateTaskDto): Promise<TaskView> {
    return this.projects.updateTask(id, body);
  }

  @Delete('tasks/:id')
  @HttpCode(204)
  remove(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.projects.removeTask(id);
  }
}
