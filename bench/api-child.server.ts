import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { JwtService } from '#strata/auth';

/**
 * The child side of forkApiChild (api-child.ts): listens on a free loopback port, signs a
 * platform-admin token, and closes the app when the parent says `shutdown` or goes away — never
 * lingering with connections to a database the parent is about to drop. Other IPC messages go to
 * `onMessage`. The caller sends its ready message with the port and token.
 */
export async function serveAsApiChild(
  app: INestApplication,
  name: string,
  onMessage?: (msg: Record<string, unknown>) => void,
): Promise<{ port: number; adminToken: string }> {
  if (!process.send) throw new Error(`${name} must be forked with an IPC channel`);
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const adminToken = await app.get(JwtService).signPlatformToken('bench-operator', 6 * 3600);
  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= app
      .close()
      .catch((err) => console.error(`${name}: close failed`, err))
      .finally(() => process.exit(0));
    return closing;
  };
  process.on('message', (msg: Record<string, unknown>) => {
    if (msg?.type === 'shutdown') void shutdown();
    else onMessage?.(msg);
  });
  process.on('disconnect', () => void shutdown());
  return { port, adminToken };
}
