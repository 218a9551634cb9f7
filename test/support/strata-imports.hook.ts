import Module from 'node:module';
import { join } from 'node:path';

/**
 * jest applies moduleNameMapper to test files, not to globalSetup/globalTeardown, which node's own
 * require loads: there `#strata/<lib>` would resolve through package.json's "imports" to the built
 * dist/ (stale or missing). Map it to the sources, as moduleNameMapper does for tests.
 */
const resolver = Module as unknown as { _resolveFilename(request: string, ...rest: unknown[]): string };
const original = resolver._resolveFilename;
const root = join(__dirname, '..', '..');
resolver._resolveFilename = function (request: string, ...rest: unknown[]) {
  const m = /^#strata\/(.+)$/.exec(request);
  return original.call(this, m ? join(root, 'libs', m[1], 'index.ts') : request, ...rest);
};
