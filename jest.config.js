// One config, three layers as jest projects: unit (libs, fast), integration (real Postgres), e2e (HTTP).
const swcConfig = JSON.parse(require('fs').readFileSync(`${__dirname}/.swcrc`, 'utf8'));
const base = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j|mj)s$': ['@swc/jest', { ...swcConfig, swcrc: false }] },
  // Nest 12 and some of its deps ship ESM only; let swc turn them into CJS for jest's module system.
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|file-type|load-esm|nestjs-cls|@nestjs-cls|uid|uint8array-extras|strtok3|token-types|@tokenizer|jose|content-type|content-disposition|@seriousme)/)'],
  // `#strata/<lib>` → the lib's face, as package.json "imports" maps it (platform and domain libs live in two folders).
  moduleNameMapper: Object.fromEntries(
    Object.entries(require('./package.json').imports).map(([spec, to]) => [`^${spec.replace(/[/]/g, '\\/')}$`, `<rootDir>/${to.types.slice(2)}`]),
  ),
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
};
module.exports = {
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'] },
    {
      ...base,
      displayName: 'integration',
      // Real servers: 30 s per test and hook (a project's testTimeout is ignored by jest 30: see the file).
      setupFilesAfterEnv: ['<rootDir>/test/support/jest-timeout.ts'],
      testMatch: ['<rootDir>/test/integration/**/*.int-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    {
      ...base,
      displayName: 'e2e',
      setupFilesAfterEnv: ['<rootDir>/test/support/jest-timeout.ts'],
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};
