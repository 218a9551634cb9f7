import { Inject, Injectable } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import { originOf, OutboundRequestError, OutboundTimeoutError, TenantHttpClient } from '#strata/http-client';
import { TenantConnectionManager } from '#strata/tenancy';
import { BlockedDestinationError, literalDestinationProblem } from './webhook-destination.policy';
import type { DeliveryStatus, WebhookDelivery } from './webhook-delivery.entity';
import type { WebhookEndpoint } from './webhook-endpoint.entity';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookEgress } from './webhook-egress.dispatcher';
import { WebhookEndpointsRepository } from './webhook-endpoints.repository';
import { InvalidWebhookSecretError, signWebhook, type WebhookSignatureHeaders } from './webhook.signature';
import { WEBHOOKS_OPTIONS, type WebhooksOptions } from './webhooks.options';

/** The JSON body of every webhook request. */
export interface WebhookEvent<D = unknown> {
  id: string;
  type: string;
  createdAt: string;
  data: D;
}

export interface WebhookDeliveryResult {
  deliveryId: string;
  status: DeliveryStatus;
  statusCode: number | null;
}

interface Outcome {
  ok: boolean;
  /** Sending the same request again cannot succeed: no retries. */
  permanent: boolean;
  statusCode: number | null;
  error: string | null;
}

/**
 * Whether a non-2xx answer is worth retrying. 5xx, 408 (timeout), 425 (too early) and 429 (rate
 * limit) are the receiver's momentary state; any other 4xx rejects the request itself (unknown
 * URL, bad signature, unparseable body) and would reject the same bytes again. 3xx is not
 * followed (a redirect could lead the signed request to an address the URL check never saw).
 */
export function isPermanentFailure(status: number): boolean {
  if (status >= 300 && status < 400) return true;
  if (status === 408 || status === 425 || status === 429) return false;
  return status >= 400 && status < 500;
}

/**
 * The first error of `type` in a cause chain. Matched by name as well: undici re-creates a cause
 * that is not an Error of its own realm as `new Error("<name>: <message>")` (jest runs code in a vm
 * realm), and the policy must not depend on where it runs.
 */
function hasCause(err: unknown, type: { name: string; prototype: Error }): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof (type as unknown as new () => Error)) return true;
    const { name, message } = e as Partial<Error>;
    if (name === type.name || (typeof message === 'string' && message.startsWith(`${type.name}: `))) return true;
  }
  return false;
}


/** The current secret, plus the previous one while its rotation grace lasts (app clock; the grace is hours). */
export function signingSecrets(endpoint: Pick<WebhookEndpoint, 'secret' | 'previousSecret' | 'previousSecretExpiresAt'>, now = new Date()): string[] {
  const graceLasts = endpoint.previousSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt.getTime() > now.getTime();
  return graceLasts ? [endpoint.secret, endpoint.previousSecret!] : [endpoint.secret];
}

/**
 * Sends one delivery, in the tenant context its job re-entered: reads the row and its endpoint in
 * one tenant transaction, POSTs outside any transaction (no connection held across the network),
 * records the outcome in a second one, and throws when BullMQ should try again.
 */
@Injectable()
export class WebhookDeliveryService {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly endpoints: WebhookEndpointsRepository,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly http: TenantHttpClient,
    private readonly egress: WebhookEgress,
    @Inject(WEBHOOKS_OPTIONS) private readonly options: WebhooksOptions,
  ) {}

  /** `lastAttempt`: no retry follows, so a failure is final and the row says `failed`. */
  async deliver(deliveryId: string, lastAttempt: boolean): Promise<WebhookDeliveryResult> {
    const { delivery, endpoint } = await this.connections.transaction(async () => {
      const d = await this.deliveries.findById(deliveryId);
      const e = d ? await this.endpoints.findById(d.endpointId) : null;
      if (d && !e) await this.deliveries.markFailed(deliveryId, 'endpoint deleted');
      return { delivery: d, endpoint: e };
    });
    if (!delivery || !endpoint) {
      throw new UnrecoverableError(`webhook delivery ${deliveryId}: the delivery or its endpoint was deleted; nothing was sent`);
    }
    // A job run again after its delivery finished (a stalled job, a re-enqueue) sends nothing.
    if (delivery.status !== 'pending') return { deliveryId, status: delivery.status, statusCode: delivery.lastStatusCode };

    const outcome = await this.send(endpoint, delivery);
    const status: DeliveryStatus = outcome.ok ? 'delivered' : outcome.permanent || lastAttempt ? 'failed' : 'pending';
    await this.connections.transaction(() =>
      this.deliveries.recordAttempt(deliveryId, { status, statusCode: outcome.statusCode, error: outcome.error?.slice(0, 2000) ?? null }),
    );
    if (outcome.ok) return { deliveryId, status, statusCode: outcome.statusCode };
    // Webhook URLs often carry tokens in their path: errors name the origin only.
    const message = `webhook delivery ${deliveryId} to ${originOf(endpoint.url)}: ${outcome.error}`;
    throw outcome.permanent ? new UnrecoverableError(message) : new Error(message);
  }

  private async send(endpoint: WebhookEndpoint, delivery: WebhookDelivery): Promise<Outcome> {
    // Literal IPs never reach the lookup the dispatcher guards, so they are checked here (again:
    // the policy may have changed since registration).
    const literal = this.options.allowPrivateNetworks ? undefined : literalDestinationProblem(new URL(endpoint.url));
    if (literal) return { ok: false, permanent: true, statusCode: null, error: literal.message };
    const event: WebhookEvent = {
      id: delivery.eventId,
      type: delivery.eventType,
      createdAt: delivery.createdAt.toISOString(),
      data: delivery.payload,
    };
    const body = JSON.stringify(event);
    let signed: WebhookSignatureHeaders;
    try {
      // Standard Webhooks headers. webhook-id is the event id, the same on every attempt (receivers
      // deduplicate on it); webhook-timestamp is now: signed per attempt, so a retry hours later
      // still passes the receiver's replay window.
      // During a rotation's grace period the previous secret signs too (two `v1,…` entries), so a
      // receiver still holding it keeps verifying until it has switched.
      signed = signWebhook(signingSecrets(endpoint), delivery.eventId, body);
    } catch (err) {
      // A secret the spec's libraries cannot decode stays undecodable: no request, no retries.
      if (err instanceof InvalidWebhookSecretError) {
        return { ok: false, permanent: true, statusCode: null, error: `${err.message}; register a new endpoint` };
      }
      throw err;
    }
    try {
      const res = await this.http.fetch(endpoint.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signed },
        body,
        redirect: 'manual',
        timeoutMs: this.options.timeoutMs,
        // Node's fetch accepts the undici package's Agent; the two type declarations differ only nominally.
        ...(this.egress.dispatcher ? { dispatcher: this.egress.dispatcher as unknown as RequestInit['dispatcher'] } : {}),
      });
      // Only the status matters; discarding the body frees the socket for the next delivery.
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return { ok: true, permanent: false, statusCode: res.status, error: null };
      const redirect = res.status >= 300 && res.status < 400 ? ' (redirects are not followed; register the final URL)' : '';
      return { ok: false, permanent: isPermanentFailure(res.status), statusCode: res.status, error: `receiver answered HTTP ${res.status}${redirect}` };
    } catch (err) {
      if (err instanceof OutboundTimeoutError) return { ok: false, permanent: false, statusCode: null, error: err.message };
      if (err instanceof OutboundRequestError) {
        // A blocked address stays blocked: retrying would only knock on the same door.
        return { ok: false, permanent: hasCause(err, BlockedDestinationError), statusCode: null, error: err.message };
      }
      throw err;
    }
  }
}
