// Integration and e2e tests start real servers: an app's start or close takes seconds on a busy
// 2-core box, past jest's 5 s default. Set here, per test file, because jest 30 ignores a
// project's `testTimeout` (only the global one reaches jest-circus) — measured: a 6 s beforeAll
// failed with "Exceeded timeout of 5000 ms" under `testTimeout: 30_000` in the project.
jest.setTimeout(30_000);
