import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Agent } from 'undici';
import { publicOnlyLookup } from './webhook-destination.policy';
import { WEBHOOKS_OPTIONS, type WebhooksOptions } from './webhooks.options';

/**
 * The connection pool deliveries go out through. Unless private networks are allowed, its sockets
 * resolve host names with publicOnlyLookup, so the SSRF check runs on the very address connected
 * to (no DNS-rebinding window), on the first request and on any later connection alike. The
 * `undici` package is the same major version as the one inside Node's fetch, whose `dispatcher`
 * option takes it.
 */
@Injectable()
export class WebhookEgress implements OnApplicationShutdown {
  readonly dispatcher: Agent | undefined;

  constructor(@Inject(WEBHOOKS_OPTIONS) options: WebhooksOptions) {
    this.dispatcher = options.allowPrivateNetworks ? undefined : new Agent({ connect: { lookup: publicOnlyLookup } });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.dispatcher?.close();
  }
}
