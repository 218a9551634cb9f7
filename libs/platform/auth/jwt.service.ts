import { createSecretKey, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Inject, Injectable } from '@nestjs/common';
import { createRemoteJWKSet, jwtVerify, SignJWT, decodeProtectedHeader, type JWTPayload } from 'jose';
import { STRATA_CONFIG, unauthorized, type StrataConfig } from '#strata/common';

export interface TenantTokenClaims extends JWTPayload {
  sub: string;
  tid: string;
  role: string;
}

/** A tenant token issued to an operator acting as a user (`act`), naming its impersonation (`imp`). */
export interface ImpersonationTokenClaims extends TenantTokenClaims {
  act: { sub: string };
  imp: string;
}

export interface PlatformTokenClaims extends JWTPayload {
  sub: string;
  scope: string;
}

const ASYMMETRIC = ['RS256', 'PS256', 'ES256', 'EdDSA'];

/** Verifies bearer tokens: HS256 with AUTH_JWT_SECRET, or an asymmetric key from AUTH_JWKS_URL. */
@Injectable()
export class JwtService {
  // Imported once as a KeyObject: re-importing raw bytes on every verify cost ~75 µs.
  private readonly secret: KeyObject;
  private readonly verified = new LRUCache<string, JWTPayload>({ max: 10_000 });
  private readonly jwks?: ReturnType<typeof createRemoteJWKSet>;

  constructor(@Inject(STRATA_CONFIG) private readonly config: StrataConfig) {
    this.secret = createSecretKey(Buffer.from(config.jwtSecret, 'utf8'));
    if (config.jwksUrl) this.jwks = createRemoteJWKSet(new URL(config.jwksUrl));
  }

  /**
   * Verified tokens are remembered until they expire (at most 60 s): the bench measured the HMAC
   * verify as the largest single cost of a tenant request. Only successful verifications are kept,
   * keyed by the exact token; membership and tenant status are still checked on every request.
   */
  async verify(token: string): Promise<JWTPayload> {
    const known = this.verified.get(token);
    if (known) return known;
    const payload = await this.verifyUncached(token);
    const ttl = typeof payload.exp === 'number' ? payload.exp * 1000 - Date.now() : 0;
    if (ttl > 1000) this.verified.set(token, payload, { ttl: Math.min(ttl, 60_000) });
    return payload;
  }

  private async verifyUncached(token: string): Promise<JWTPayload> {
    try {
      const { alg } = decodeProtectedHeader(token);
      // A token must say who (sub), until when (exp) and since when (iat); however far its exp, it is
      // refused once older than AUTH_TOKEN_MAX_AGE_SECONDS, so no signed token lives forever.
      const options = {
        issuer: this.config.jwtIssuer,
        clockTolerance: 5,
        requiredClaims: ['sub', 'exp', 'iat'],
        maxTokenAge: this.config.tokenMaxAgeSeconds,
      };
      if (alg === 'HS256') return (await jwtVerify(token, this.secret, { ...options, algorithms: ['HS256'] })).payload;
      if (this.jwks && alg && ASYMMETRIC.includes(alg)) {
        return (await jwtVerify(token, this.jwks, { ...options, algorithms: ASYMMETRIC })).payload;
      }
      throw new Error(`algorithm ${String(alg)} is not accepted`);
    } catch (err) {
      const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
      throw unauthorized(expired ? 'token_expired' : 'invalid_token', expired ? 'token has expired' : 'token is not valid');
    }
  }

  async signTenantToken(claims: { sub: string; tid: string; role: string }): Promise<{ token: string; expiresIn: number }> {
    const expiresIn = this.config.tokenTtlSeconds;
    let jwt = new SignJWT({ tid: claims.tid, role: claims.role })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuedAt()
      .setExpirationTime(`${expiresIn}s`);
    if (this.config.jwtIssuer) jwt = jwt.setIssuer(this.config.jwtIssuer);
    return { token: await jwt.sign(this.secret), expiresIn };
  }

  /**
   * An impersonation token (RFC 8693 style): `sub` the user, `act.sub` the operator acting as them,
   * `imp` the control.impersonations row every request checks (revocation), no refresh token.
   */
  async signImpersonationToken(claims: ImpersonationTokenClaims, expiresAt: Date): Promise<{ token: string; expiresIn: number }> {
    const exp = Math.floor(expiresAt.getTime() / 1000);
    let jwt = new SignJWT({ tid: claims.tid, role: claims.role, act: { sub: claims.act.sub }, imp: claims.imp })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuedAt()
      .setExpirationTime(exp);
    if (this.config.jwtIssuer) jwt = jwt.setIssuer(this.config.jwtIssuer);
    return { token: await jwt.sign(this.secret), expiresIn: Math.max(0, exp - Math.floor(Date.now() / 1000)) };
  }

  /** For operators' tooling, the demo and tests: a short-lived platform-admin token. */
  async signPlatformToken(sub: string, ttlSeconds = 3600): Promise<string> {
    let jwt = new SignJWT({ scope: 'platform:admin' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`);
    if (this.config.jwtIssuer) jwt = jwt.setIssuer(this.config.jwtIssuer);
    return jwt.sign(this.secret);
  }
}
