import { Inject, Injectable } from '@nestjs/common';
import { Client } from 'pg';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';

export interface ServerDatabase {
  host: string;
  port: number;
  database: string;
}

/** A client as the owner role on `address`, with DATABASE_URL's credentials (as onboarding always did). */
export function ownerClient(databaseUrl: string, address: ServerDatabase, applicationName: string): Client {
  const url = new URL(databaseUrl);
  return new Client({
    host: address.host,
    port: address.port,
    database: address.database,
    user: decodeURIComponent(url.username),
    password: url.password ? decodeURIComponent(url.password) : undefined,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  });
}

/**
 * Owner-role sessions on any server of the fleet, for DDL and data movement (provisioning, drops,
 * moves). The owner's credentials are DATABASE_URL's on every server; the app role never gets here.
 */
@Injectable()
export class OwnerConnections {
  constructor(@Inject(STRATA_CONFIG) private readonly config: StrataConfig) {}

  /** A connected client; the caller ends it. */
  async connect(address: ServerDatabase, applicationName = 'strata-owner'): Promise<Client> {
    const client = ownerClient(this.config.databaseUrl, address, applicationName);
    // An unreachable server must not crash the process through an unhandled 'error' event.
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  async with<T>(address: ServerDatabase, fn: (client: Client) => Promise<T>, applicationName?: string): Promise<T> {
    const client = await this.connect(address, applicationName);
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
