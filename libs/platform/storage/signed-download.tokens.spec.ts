import { Test } from '@nestjs/testing';
import { CLS_ID, ClsModule, ClsService } from 'nestjs-cls';
import { createSecretKey } from 'node:crypto';
import { decodeJwt, SignJWT } from 'jose';
import { ApiException, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantRegistry, type TenantEntity } from '#strata/control-plane';
import { MissingTenantContextError, TenantContext, type TenantPlacement } from '#strata/tenancy/platform';
import { SignedDownloads } from './signed-download.tokens';
import { resolveStorageOptions, STORAGE_OPTIONS } from './storage.options';

const SECRET = 'unit-test-secret-0123456789abcdef0123456789';
const A = '3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60';
const B = '7d0e5b1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b';
const FILE = '11111111-2222-4333-8444-555555555555';

const placement = (id: string): TenantPlacement => ({
  id,
  slug: `t-${id.slice(0, 4)}`,
  tier: 'pool',
  poolId: 'main-pool',
  schemaName: 'shared',
  databaseName: null,
  status: 'active',
  schemaVersion: '0005',
  placementEpoch: 1,
});

/** The registry as SignedDownloads reads it: tenants by id, with a status each. */
class FakeRegistry {
  readonly tenants = new Map<string, Partial<TenantEntity>>([
    [A, { ...placement(A) }],
    [B, { ...placement(B) }],
  ]);
  async findById(id: string): Promise<TenantEntity | null> {
    return (this.tenants.get(id) as TenantEntity | undefined) ?? null;
  }
}

/** `"<status> <code>"` of the ApiException `promise` rejects with. */
async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof ApiException) return `${err.getStatus()} ${err.code}`;
  throw new Error(`expected an ApiException, got ${String(err)}`);
}

describe('SignedDownloads', () => {
  let signed: SignedDownloads;
  let ctx: TenantContext;
  let cls: ClsService;
  let registry: FakeRegistry;

  beforeEach(async () => {
    registry = new FakeRegistry();
    const mod = await Test.createTestingModule({
      imports: [ClsModule.forRoot({ global: true })],
      providers: [
        TenantContext,
        SignedDownloads,
        { provide: STRATA_CONFIG, useValue: { jwtSecret: SECRET } as StrataConfig },
        { provide: STORAGE_OPTIONS, useValue: resolveStorageOptions({ urlTtlSeconds: 60 }, {}) },
        { provide: TenantRegistry, useValue: registry },
      ],
    }).compile();
    signed = mod.get(SignedDownloads);
    ctx = mod.get(TenantContext);
    cls = mod.get(ClsService);
  });

  const issueAs = (tenant: string, resource = FILE, purpose = 'files', ttl?: number) =>
    ctx.run({ tenant: placement(tenant) }, () => signed.issue(purpose, resource, ttl ? { expiresInSeconds: ttl } : {}));

  /** Runs open() and reports which tenant the work ran as, and for what. */
  const openAs = (token: unknown, purpose = 'files') => signed.open(purpose, token, async (resource) => ({ tenant: ctx.tenant.id, resource }));

  it('issues a URL-safe token for the current tenant that expires after FILES_URL_TTL_SECONDS', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { token, expiresAt } = await issueAs(A);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ tid: A, res: FILE, aud: 'strata:download:files' });
    expect(claims.exp! - claims.iat!).toBe(60);
    expect(claims.iat).toBeGreaterThanOrEqual(before);
    expect(expiresAt.getTime()).toBe(claims.exp! * 1000);
  });

  it('refuses to issue without a tenant context', async () => {
    await expect(signed.issue('files', FILE)).rejects.toBeInstanceOf(MissingTenantContextError);
  });

  it('runs the work as the tenant inside the token, with the resource it names', async () => {
    const { token } = await issueAs(B);
    expect(await openAs(token)).toEqual({ tenant: B, resource: FILE });
    // The caller's own context is untouched: nothing leaks out of open().
    expect(ctx.current()).toBeUndefined();
  });

  it('carries the request id of the surrounding request into the tenant context', async () => {
    const { token } = await issueAs(A);
    const requestId = await cls.run(async () => {
      cls.set(CLS_ID, 'rq-signed-1');
      return signed.open('files', token, async () => ctx.require().requestId);
    });
    expect(requestId).toBe('rq-signed-1');
  });

  it('answers an altered token with 403 signed_url_invalid, wherever it was changed', async () => {
    const { token } = await issueAs(A);
    const [header, payload, signature] = token.split('.');
    // Another tenant's id in the payload, the signature kept.
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(token), tid: B })).toString('base64url');
    const flipped = signature.slice(0, -2) + (signature.at(-2) === 'A' ? 'B' : 'A') + signature.at(-1);
    for (const bad of [`${header}.${forged}.${signature}`, `${header}.${payload}.${flipped}`, token.slice(0, -5), `${token}x`, 'garbage', '', 'a'.repeat(5000)]) {
      expect(await refusal(openAs(bad))).toBe('403 signed_url_invalid');
    }
    expect(await refusal(openAs(undefined))).toBe('403 signed_url_invalid');
    expect(await refusal(openAs(['a', 'b']))).toBe('403 signed_url_invalid');
  });

  it('refuses a token made for another purpose, and a bearer token signed with AUTH_JWT_SECRET itself', async () => {
    const { token } = await issueAs(A, FILE, 'avatars');
    expect(await refusal(openAs(token, 'files'))).toBe('403 signed_url_invalid');
    const bearer = await new SignJWT({ tid: A, res: FILE, sub: 'someone' })
      .setProtectedHeader({ alg: 'HS256', typ: 'strata-download' })
      .setAudience('strata:download:files')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(createSecretKey(Buffer.from(SECRET, 'utf8')));
    expect(await refusal(openAs(bearer))).toBe('403 signed_url_invalid');
  });

  it('answers a genuine token past its expiry with 403 signed_url_expired', async () => {
    jest.useFakeTimers({ now: Date.now(), doNotFake: ['nextTick', 'setImmediate'] });
    try {
      const { token } = await issueAs(A, FILE, 'files', 1);
      jest.setSystemTime(Date.now() + 2_000);
      expect(await refusal(openAs(token))).toBe('403 signed_url_expired');
    } finally {
      jest.useRealTimers();
    }
  });

  it('answers 404 tenant_not_found once the tenant is suspended or gone, whatever the token says', async () => {
    const { token } = await issueAs(A);
    registry.tenants.set(A, { ...placement(A), status: 'suspended' });
    expect(await refusal(openAs(token))).toBe('404 tenant_not_found');
    registry.tenants.delete(A);
    expect(await refusal(openAs(token))).toBe('404 tenant_not_found');
  });

  it('refuses a lifetime outside 1..604800 seconds and an empty resource', async () => {
    await expect(issueAs(A, FILE, 'files', 604_801)).rejects.toThrow(RangeError);
    await expect(issueAs(A, '')).rejects.toThrow(RangeError);
  });
});
