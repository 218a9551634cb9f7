/**
 * Architecture rules checked in CI (`npm run lint:deps`). The layout says which lib is which:
 * libs/platform/* is the engine (tenancy, control plane, migrator, moves, the edge, jobs …),
 * libs/domain/* the business (projects, invoices, files, webhooks), and the rules follow the folders:
 * - a lib reaches another lib only through its faces: index.ts (the public API) or, for platform
 *   code, platform/index.ts where a lib has one (libs/platform/tenancy);
 * - domain libs never touch tier internals or the engine's platform faces: no control plane, no
 *   migrator, admin, health, moves or exports, no pg driver, no `platform/` face, no other lib's files;
 * - platform libs never depend on domain libs (the engine knows no business);
 * - the arrows between platform libs run one way: tenancy knows no migrator, admin, moves, jobs or
 *   HTTP edge (it is handed its inputs); jobs and the worker do not depend on the HTTP edge.
 */
const FACE = '(index\\.ts|platform/index\\.ts)$';
const LIB = '^libs/(platform|domain)/([^/]+)/';

module.exports = {
  forbidden: [
    {
      name: 'lib-internals-across-libs',
      severity: 'error',
      comment: 'Import another lib through #strata/<lib> (its index.ts, or platform/index.ts for platform code), never its files.',
      from: { path: LIB },
      to: { path: `^libs/(platform|domain)/([^/]+)/(?!${FACE})`, pathNot: '^libs/$1/$2/' },
    },
    {
      name: 'apps-reach-libs-by-their-faces',
      severity: 'error',
      from: { path: '^apps/' },
      to: { path: `^libs/(platform|domain)/[^/]+/(?!${FACE})` },
    },
    {
      name: 'domain-does-not-know-tiers',
      severity: 'error',
      comment: 'Domain modules use TenantConnectionManager/TenantContext from #strata/tenancy; tier routing stays inside the platform.',
      from: { path: '^libs/domain/' },
      to: {
        path: ['^libs/platform/(control-plane|migrator|admin|health|moves|exports)/', '^libs/platform/[^/]+/platform/', 'node_modules/pg/', 'node_modules/ioredis/'],
      },
    },
    {
      name: 'platform-knows-no-domain',
      severity: 'error',
      comment: 'The engine serves every domain module and names none of them.',
      from: { path: '^libs/platform/' },
      to: { path: '^libs/domain/' },
    },
    {
      name: 'tenancy-is-handed-its-inputs',
      severity: 'error',
      comment: 'Tenancy is given the schema version and the home migrator (MigratorModule); it never reads migrations, the HTTP edge, jobs or moves.',
      from: { path: '^libs/platform/tenancy/' },
      to: { path: '^libs/platform/(migrator|admin|auth|health|jobs|moves|exports)/' },
    },
    {
      name: 'jobs-do-not-depend-on-the-http-edge',
      severity: 'error',
      comment: 'Jobs and the worker get placements from tenancy (placementOf), never from the HTTP guard.',
      from: { path: ['^libs/platform/jobs/', '^apps/worker/'] },
      to: { path: '^libs/platform/auth/' },
    },
    {
      name: 'mail-is-a-port',
      severity: 'error',
      comment: 'libs/platform/mail sends what it is handed (the outbound email port and its drivers); it knows no tenant, user or route.',
      from: { path: '^libs/platform/mail/' },
      to: { path: '^libs/(platform/(?!mail/|common/)|domain/)' },
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
