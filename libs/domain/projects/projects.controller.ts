import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { UuidPipe, type Page } from '#strata/common';
import { CreateProjectDto, ListProjectsQuery, UpdateProjectDto, type ProjectView } from './projects.dto';
import { ProjectsService } from './projects.service';

// No guard decorators: the global tenant guard binds the tenant before any handler runs. Path ids
// come first in each signature because Nest starts pipes in parameter order, so a malformed id is
// reported as invalid_id ahead of any complaint about the body.
@Controller('projects')
export class ProjectsController {
  constructor(private readonly projects: ProjectsService) {}

  @Get()
  list(@Query() query: ListProjectsQuery): Promise<Page<ProjectView>> {
    return this.projects.list(query.limit, query.cursor);
  }

  @Post()
  create(@Body() body: CreateProjectDto): Promise<ProjectView> {
    return this.projects.create(body);
  }

  @Get(':id')
  get(@Param('id', UuidPipe) id: string): Promise<ProjectView> {
    return this.projects.get(id);
  }

  @Patch(':id')
  update(@Param('id', UuidPipe) id: string, @Body() body: UpdateProjectDto): Promise<ProjectView> {
    return this.projects.update(id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.projects.remove(id);
  }
}
