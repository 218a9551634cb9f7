/**
 * Architecture rules checked in CI (`npm run lint:deps`):
 * - a lib reaches another lib only through its faces: index.ts (the public API) or, for platform
 *   code, platform/index.ts where a lib has one (libs/tenancy);
 * - domain libs (everything that is not platform plumbing) never touch tier internals: no
 *   control plane, no migrator, no pg driver, no platform face, no other lib's files;
 * - the arrows between platform libs run one way: tenancy knows no migrator, admin, moves or HTTP
 *   edge; jobs (and the worker) do not depend on the HTTP edge (libs/auth).
 */
const PLATFORM_LIBS = 'tenancy|common|control-plane|migrator|auth|admin|health|jobs|cache|observability|storage|http-client|moves';
const FACE = '(index\\.ts|platform/index\\.ts)$';

module.exports = {
  forbidden: [
    {
      name: 'lib-internals-across-libs',
      severity: 'error',
      comment: 'Import another lib through #strata/<lib> (its index.ts), never its files.',
      from: { path: '^libs/([^/]+)/' },
      to: { path: `^libs/([^/]+)/(?!${FACE})`, pathNot: '^libs/$1/' },
    },
    {
      name: 'apps-reach-libs-by-index',
      severity: 'error',
      from: { path: '^apps/' },
      to: { path: `^libs/[^/]+/(?!${FACE})` },
    },
    {
      name: 'domain-does-not-know-tiers',
      severity: 'error',
      comment: 'Domain modules use TenantConnectionManager/TenantContext from #strata/tenancy; tier routing stays inside tenancy.',
      from: { path: `^libs/(?!(${PLATFORM_LIBS})/)[^/]+/` },
      to: { path: ['^libs/(control-plane|migrator|admin|health|moves)/', '^libs/[^/]+/platform/', 'node_modules/pg/', 'node_modules/ioredis/'] },
    },
    {
      name: 'tenancy-is-handed-its-inputs',
      severity: 'error',
      comment: 'Tenancy is given the schema version and the home migrator (MigratorModule); it never reads migrations, the HTTP edge or moves.',
      from: { path: '^libs/tenancy/' },
      to: { path: '^libs/(migrator|admin|auth|health|jobs|moves)/' },
    },
    {
      name: 'jobs-do-not-depend-on-the-http-edge',
      severity: 'error',
      comment: 'Jobs and the worker get placements from tenancy (placementOf), never from the HTTP guard.',
      from: { path: ['^libs/jobs/', '^apps/worker/'] },
      to: { path: '^libs/auth/' },
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
