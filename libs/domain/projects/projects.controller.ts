import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiPageResponse, UuidPipe, type Page } from '#strata/common';
import { Idempotent } from '#strata/idempotency';
import { CreateProjectDto, ListProjectsQuery, ProjectView, UpdateProjectDto } from './projects.dto';
import { ProjectsErrorCode } from './projects.errors';
import { ProjectsService } from './projects.service';
import { RequireRole } from '#strata/auth';
import { PlansErrorCode } from '#strata/plans';

// The global tenant guard binds the tenant before any handler runs (@RequireRole says who may call). Path ids
// come first in each signature because Nest starts pipes in parameter order, so a malformed id is
// reported as invalid_id ahead of any complaint about the body.
@Controller('projects')
@ApiTags('projects')
export class ProjectsController {
  constructor(private readonly projects: ProjectsService) {}

  @Get()
  @RequireRole('member')
  @ApiPageResponse(ProjectView)
  list(@Query() query: ListProjectsQuery): Promise<Page<ProjectView>> {
    return this.projects.list(query.limit, query.cursor, query.q);
  }

  @Post()
  @RequireRole('member')
  @Idempotent()
  @ApiCreatedResponse({ type: ProjectView })
  @ApiErrors({ 402: [PlansErrorCode.planLimitReached] })
  create(@Body() body: CreateProjectDto): Promise<ProjectView> {
    return this.projects.create(body);
  }

  @Get(':id')
  @RequireRole('member')
  @ApiOkResponse({ type: ProjectView })
  @ApiErrors({ 404: [ProjectsErrorCode.projectNotFound] })
  get(@Param('id', UuidPipe) id: string): Promise<ProjectView> {
    return this.projects.get(id);
  }

  @Patch(':id')
  @RequireRole('member')
  @ApiOkResponse({ type: ProjectView })
  @ApiErrors({ 404: [ProjectsErrorCode.projectNotFound] })
  update(@Param('id', UuidPipe) id: string, @Body() body: UpdateProjectDto): Promise<ProjectView> {
    return this.projects.update(id, body);
  }

  @Delete(':id')
  @RequireRole('admin')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'deleted, with its tasks' })
  @ApiErrors({ 404: [ProjectsErrorCode.projectNotFound] })
  remove(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.projects.remove(id);
  }
}
