import { Module } from '@nestjs/common';
import { TenancyModule } from '#strata/tenancy';
import { IdempotencyModule } from '#strata/idempotency';
import { Project } from './project.entity';
import { Task } from './task.entity';
import { ProjectsController } from './projects.controller';
import { TasksController } from './tasks.controller';
import { ProjectsRepository } from './projects.repository';
import { TasksRepository } from './tasks.repository';
import { ProjectsService } from './projects.service';

@Module({
  imports: [TenancyModule.forFeature([Project, Task]), IdempotencyModule],
  controllers: [ProjectsController, TasksController],
  providers: [ProjectsRepository, TasksRepository, ProjectsService],
  exports: [ProjectsService],
})
export class ProjectsModule {}
