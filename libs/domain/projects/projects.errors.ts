/** Every error code libs/domain/projects answers, in one place (OpenAPI and tests list them from here). */
export const ProjectsErrorCode = {
  /** 404: no project with that id in this tenant. */
  projectNotFound: 'project_not_found',
  /** 404: no task with that id in this tenant. */
  taskNotFound: 'task_not_found',
} as const;
export type ProjectsErrorCode = (typeof ProjectsErrorCode)[keyof typeof ProjectsErrorCode];
