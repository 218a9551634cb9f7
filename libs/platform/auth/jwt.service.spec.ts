import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { StrataConfig } from '#strata/common';
import { JwtService } from './jwt.service';

const SECRET = 's'.repeat(40);
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

function service(over: Partial<StrataConfig> = {}): JwtService {
  return new JwtService({ jwtSecret: SECRET, tokenTtlSeconds: 600, jwksUrl: undefined, jwtIssuer: undefined, ...over } as StrataConfig);
}

describe('JwtService', () => {
  it('accepts the tokens it signs and reads their claims', async () => {
    const jwt = service();
    const { token } = await jwt.signTenantToken({ sub: 'u1', tid: 't1', role: 'owner' });
    await expect(jwt.verify(token)).resolves.toMatchObject({ sub: 'u1', tid: 't1', role: 'owner' });
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
      new SignJWT({ tid: 't1', role: 'member' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('u1').setExpirationTime('5m').sign(key);

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
