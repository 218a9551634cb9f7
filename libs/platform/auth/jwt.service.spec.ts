import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { StrataConfig } from '#strata/common';
import { JwtService } from './jwt.service';

const SECRET = 's'.repeat(40);
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

function service(over: Partial<StrataConfig> = {}): JwtService {
  return new JwtService({ jwtSecret: SECRET, tokenTtlSeconds: 600, tokenMaxAgeSeconds: 3600, jwksUrl: undefined, jwtIssuer: undefined, ...over } as StrataConfig);
}

describe('JwtService', () => {
  it('accepts the tokens it signs and reads their claims', async () => {
    const jwt = service();
    const { token } = await jwt.signTenantToken({ sub: 'u1', tid: 't1', role: 'owner' });
    await expect(jwt.verify(token)).resolves.toMatchObject({ sub: 'u1', tid: 't1', role: 'owner' });
  });

  const hs256 = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' });
  const key = new TextEncoder().encode(SECRET);

  it('rejects a correctly signed token without exp: it would never expire', async () => {
    const token = await hs256({ tid: 't1', role: 'owner' }).setSubject('u1').setIssuedAt().sign(key);
    await expect(service().verify(token)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('rejects a correctly signed token without sub or without iat', async () => {
    const noSub = await hs256({ tid: 't1' }).setIssuedAt().setExpirationTime('5m').sign(key);
    const noIat = await hs256({ tid: 't1' }).setSubject('u1').setExpirationTime('5m').sign(key);
    await expect(service().verify(noSub)).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(service().verify(noIat)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('rejects a token older than AUTH_TOKEN_MAX_AGE_SECONDS even when its exp is years away', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = await hs256({ tid: 't1' }).setSubject('u1').setIssuedAt(now - 7200).setExpirationTime(now + 10 * 365 * 86400).sign(key);
    const fresh = await hs256({ tid: 't1' }).setSubject('u1').setIssuedAt(now - 60).setExpirationTime(now + 10 * 365 * 86400).sign(key);
    await expect(service().verify(old)).rejects.toMatchObject({ status: 401 });
    await expect(service().verify(fresh)).resolves.toMatchObject({ sub: 'u1' });
  });

  it('rejects a token of another issuer when AUTH_JWT_ISSUER is set', async () => {
    const token = await service().signPlatformToken('op');
    await expect(service({ jwtIssuer: 'https://strata.test' }).verify(token)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  describe('with AUTH_JWKS_URL', () => {
    let server: Server;
    let url: string;
    let privateKey: PrivateKey;
    let otherKey: PrivateKey;

    beforeAll(async () => {
      const pair = await generateKeyPair('ES256');
      privateKey = pair.privateKey;
      otherKey = (await generateKeyPair('ES256')).privateKey;
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
      server = createServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    const sign = (key: PrivateKey) =>
      new SignJWT({ tid: 't1', role: 'member' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('u1').setIssuedAt().setExpirationTime('5m').sign(key);

    it('accepts a token signed by a key of the JWKS', async () => {
      await expect(service({ jwksUrl: url }).verify(await sign(privateKey))).resolves.toMatchObject({ sub: 'u1', tid: 't1' });
    });

    it('rejects a token signed by a key that is not in the JWKS', async () => {
      await expect(service({ jwksUrl: url }).verify(await sign(otherKey))).rejects.toMatchObject({ code: 'invalid_token' });
    });

    it('rejects asymmetric tokens when no JWKS is configured', async () => {
      await expect(service().verify(await sign(privateKey))).rejects.toMatchObject({ code: 'invalid_token' });
    });
  });
});
