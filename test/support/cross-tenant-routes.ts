import type { ForeignRoute } from './cross-tenant';

/**
 * Every tenant route that takes an id, with how to call it with a victim's ids. The cross-tenant
 * specs probe these tables on every tier pair; test/e2e/route-coverage.e2e-spec.ts checks at runtime
 * that every such route the app registers is in one of them, so a new route cannot ship without its
 * foreign-id test.
 */
export const DOMAIN_FOREIGN_ROUTES: Array<ForeignRoute<{ projectId: string; taskId: string; invoiceId: string }>> = [
  ['GET /projects/:id', (o) => ['get', `/projects/${o.projectId}`]],
  ['PATCH /projects/:id', (o) => ['patch', `/projects/${o.projectId}`, { name: 'hijacked' }]],
  ['DELETE /projects/:id', (o) => ['delete', `/projects/${o.projectId}`]],
  ['GET /projects/:id/tasks', (o) => ['get', `/projects/${o.projectId}/tasks`]],
  ['POST /projects/:id/tasks', (o) => ['post', `/projects/${o.projectId}/tasks`, { title: 'planted' }]],
  ['GET /tasks/:id', (o) => ['get', `/tasks/${o.taskId}`]],
  ['PATCH /tasks/:id', (o) => ['patch', `/tasks/${o.taskId}`, { title: 'hijacked' }]],
  ['DELETE /tasks/:id', (o) => ['delete', `/tasks/${o.taskId}`]],
  ['GET /invoices/:id', (o) => ['get', `/invoices/${o.invoiceId}`]],
];

export const FILE_FOREIGN_ROUTES: Array<ForeignRoute<{ fileId: string }>> = [
  ['GET /files/:id', (v) => ['get', `/files/${v.fileId}`]],
  ['GET /files/:id/content', (v) => ['get', `/files/${v.fileId}/content`]],
  ['GET /files/:id/url', (v) => ['get', `/files/${v.fileId}/url`]],
  ['DELETE /files/:id', (v) => ['delete', `/files/${v.fileId}`]],
];

export const WEBHOOK_FOREIGN_ROUTES: Array<ForeignRoute<{ endpointId: string }>> = [
  ['GET /webhooks/:id', (v) => ['get', `/webhooks/${v.endpointId}`]],
  ['GET /webhooks/:id/deliveries', (v) => ['get', `/webhooks/${v.endpointId}/deliveries`]],
  ['DELETE /webhooks/:id', (v) => ['delete', `/webhooks/${v.endpointId}`]],
];

/** The names ("METHOD /path/:param") of every route some cross-tenant spec probes. */
export const FOREIGN_PROBED_ROUTES: readonly string[] = [...DOMAIN_FOREIGN_ROUTES, ...FILE_FOREIGN_ROUTES, ...WEBHOOK_FOREIGN_ROUTES].map(([name]) => name);
