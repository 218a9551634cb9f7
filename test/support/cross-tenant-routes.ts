import { randomUUID } from 'node:crypto';
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
  ['PATCH /invoices/:id', (o) => ['patch', `/invoices/${o.invoiceId}`, { amount: 1 }]],
  ['POST /invoices/:id/void', (o) => ['post', `/invoices/${o.invoiceId}/void`]],
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
  ['PATCH /webhooks/:id', (v) => ['patch', `/webhooks/${v.endpointId}`, { enabled: false }]],
  ['POST /webhooks/:id/rotate-secret', (v) => ['post', `/webhooks/${v.endpointId}/rotate-secret`]],
  ['POST /webhooks/:id/ping', (v) => ['post', `/webhooks/${v.endpointId}/ping`]],
  // The delivery id is random: the endpoint check (404 webhook_not_found) comes first.
  ['POST /webhooks/:id/deliveries/:deliveryId/redeliver', (v) => ['post', `/webhooks/${v.endpointId}/deliveries/${randomUUID()}/redeliver`]],
];

/** Members live in the control plane: a foreign user id is simply not a member of the caller's tenant. */
export const MEMBER_FOREIGN_ROUTES: Array<ForeignRoute<{ memberUserId: string }>> = [
  ['PATCH /members/:userId', (v) => ['patch', `/members/${v.memberUserId}`, { role: 'member' }]],
  ['DELETE /members/:userId', (v) => ['delete', `/members/${v.memberUserId}`]],
];

/** Invitations too: a foreign invitation id is not one of the caller's tenant. */
export const INVITATION_FOREIGN_ROUTES: Array<ForeignRoute<{ invitationId: string }>> = [
  ['DELETE /members/invitations/:id', (v) => ['delete', `/members/invitations/${v.invitationId}`]],
];

/** A tenant's own exports (owners): another tenant's export id is not found (test/e2e/tenant-exports.e2e-spec.ts). */
export const EXPORT_FOREIGN_ROUTES: Array<ForeignRoute<{ exportId: string }>> = [
  ['GET /export/:id', (v) => ['get', `/export/${v.exportId}`]],
  ['GET /export/:id/archive', (v) => ['get', `/export/${v.exportId}/archive`]],
];

/** The names ("METHOD /path/:param") of every route some cross-tenant spec probes. */
export const FOREIGN_PROBED_ROUTES: readonly string[] = [
  ...DOMAIN_FOREIGN_ROUTES,
  ...FILE_FOREIGN_ROUTES,
  ...WEBHOOK_FOREIGN_ROUTES,
  ...MEMBER_FOREIGN_ROUTES,
  ...INVITATION_FOREIGN_ROUTES,
  ...EXPORT_FOREIGN_ROUTES,
].map(([name]) => name);
