import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';

/**
 * Where Chromium is: STRATA_CHROMIUM (set by scripts/ensure-chromium.sh), else Debian's
 * /usr/bin/chromium. The browser tests fail, never skip, without one: a CORS setting that only
 * curl ever exercised is exactly the gap they close.
 */
export function chromiumPath(): string {
  const candidates = [process.env.STRATA_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `Chromium is needed by the browser tests and was not found (looked at ${candidates.join(', ')}). ` +
        'Install it with `apt-get install -y chromium` (scripts/test.sh does so when run as root) or set STRATA_CHROMIUM to its path.',
    );
  }
  return found;
}

/** Headless Debian Chromium through playwright-core (no bundled browser download). */
export function launchChromium(): Promise<Browser> {
  // --no-sandbox: tests run as root in containers, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
}

export interface StaticSite {
  /** `http://127.0.0.1:<port>`: an origin of its own, different from the API's port. */
  origin: string;
  close(): Promise<void>;
}

/** A tiny node:http server answering `pages[path]` as HTML (404 otherwise): the browser app's origin. */
export async function serveStaticPages(pages: Record<string, string>, host = '127.0.0.1'): Promise<StaticSite> {
  const server: Server = createServer((req, res) => {
    const page = pages[new URL(req.url ?? '/', 'http://x').pathname];
    if (page === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
