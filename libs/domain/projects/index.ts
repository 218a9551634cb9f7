// Public API of libs/domain/projects. The app mounts ProjectsModule; the rest is for in-process callers
// (the bench calls ProjectsService, and maps Project for its untenanted baseline).
export { ProjectsModule } from './projects.module';
export { ProjectsService } from './projects.service';
export { Project } from './project.entity';
export { TASK_STATUSES, type TaskStatus } from './task.entity';
export type { ProjectView, TaskView } from './projects.dto';
export { ProjectsErrorCode } from './projects.errors';
