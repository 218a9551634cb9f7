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
// eslint-disable-next-line @typescript-eslint/no-require-imports
const faces = (require('../../package.json') as { imports: Record<string, { types: string }> }).imports;
resolver._resolveFilename = function (request: string, ...rest: unknown[]) {
  const face = request.startsWith('#strata/') ? faces[request] : undefined;
  return original.call(this, face ? join(root, face.types) : request, ...rest);
};
