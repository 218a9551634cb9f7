/**
 * Architecture rules checked in CI (`npm run lint:deps`):
 * - a lib reaches another lib only through its index.ts (the public API);
 * - domain libs (everything that is not platform plumbing) never touch tier internals: no
 *   control plane, no migrator, no pg driver, no other lib's files — only tenancy's public API.
 */
const PLATFORM_LIBS = 'tenancy|common|control-plane|migrator|auth|admin|health|jobs|cache|observability|storage|http-client';

module.exports = {
  forbidden: [
    {
      name: 'lib-internals-across-libs',
      severity: 'error',
      comment: 'Import another lib through #strata/<lib> (its index.ts), never its files.',
      from: { path: '^libs/([^/]+)/' },
      to: { path: '^libs/([^/]+)/(?!index\\.ts$)', pathNot: '^libs/$1/' },
    },
    {
      name: 'apps-reach-libs-by-index',
      severity: 'error',
      from: { path: '^apps/' },
      to: { path: '^libs/[^/]+/(?!index\\.ts$)' },
    },
    {
      name: 'domain-does-not-know-tiers',
      severity: 'error',
      comment: 'Domain modules use TenantConnectionManager/TenantContext from #strata/tenancy; tier routing stays inside tenancy.',
      from: { path: `^libs/(?!(${PLATFORM_LIBS})/)[^/]+/` },
      to: { path: ['^libs/(control-plane|migrator|admin|health)/', 'node_modules/pg/', 'node_modules/ioredis/'] },
    },
    {
      name: 'libs-do-not-import-apps-or-tests',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^(apps|test|bench)/' },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true, pathNot: '\\.entities?\\.ts$' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^dist/|\\.spec\\.ts$)' },
    // TypeScript 7 has no JS API yet: dependency-cruiser parses TS with swc instead.
    parser: 'swc',
    tsPreCompilationDeps: true,
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['types', 'import', 'require', 'node', 'default'],
      mainFields: ['types', 'main'],
      extensions: ['.ts', '.js', '.json'],
    },
  },
};
