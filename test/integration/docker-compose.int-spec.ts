import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

// js-yaml (a dev tool of jest's) reads the file as `docker compose` would, anchors and merges included.
const { load } = require('js-yaml') as { load(text: string): unknown };

interface Service {
  image?: string;
  command?: string;
  ports?: string[];
  expose?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
}

const compose = load(readFileSync(join(resolve(__dirname, '../..'), 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const { services } = compose;

describe('docker-compose.yml', () => {
  it('publishes no host port of PostgreSQL or Redis, so a local server on 5432 or 6379 never clashes', () => {
    const published = Object.values(services).flatMap((s) => s.ports ?? []);
    for (const p of published) expect(p).not.toMatch(/(^|:)(5432|6379):/);
    expect(services.postgres.ports).toBeUndefined();
    expect(services.redis.ports).toBeUndefined();
  });

  it('migrates in a one-shot service that the API and the worker wait for, successfully', () => {
    expect(services.migrate.command).toMatch(/npm run migrate -- up/);
    expect(services.migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    for (const name of ['api', 'worker']) {
      expect(services[name].depends_on?.migrate).toEqual({ condition: 'service_completed_successfully' });
    }
  });

  it('runs the worker beside the API, on the same database and Redis', () => {
    expect(services.worker.command).toBe('node dist/apps/worker/src/main.js');
    for (const key of ['DATABASE_URL', 'REDIS_URL', 'AUTH_JWT_SECRET', 'DB_APP_PASSWORD']) {
      expect([key, services.worker.environment?.[key]]).toEqual([key, services.api.environment?.[key]]);
    }
  });

  it('lets the API listen on every interface of its container, where the published port arrives', () => {
    expect(services.api.environment?.HOST).toBe('0.0.0.0');
    expect(services.api.ports).toEqual(['${API_PORT:-3000}:3000']);
  });
});
