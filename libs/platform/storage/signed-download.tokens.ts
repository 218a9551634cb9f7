import { Inject, Injectable } from '@nestjs/common';
import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { ClsService } from 'nestjs-cls';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { notFound, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantRegistry } from '#strata/control-plane';
import { placementOf, TenantContext } from '#strata/tenancy/platform';
import { MAX_URL_TTL_SECONDS, STORAGE_OPTIONS, type ResolvedStorageOptions } from './storage.options';
import { SignedUrlExpiredError, SignedUrlInvalidError } from './storage.errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PURPOSE = /^[a-z][a-z0-9-]{0,31}$/;
/** Far above any token issue() makes (~300 characters); longer input is refused before any parsing. */
const MAX_TOKEN_LENGTH = 1024;
const MAX_RESOURCE_LENGTH = 256;
/** `typ` of the JWS header: a bearer token, or any other JWT signed with a related key, is not one of these. */
const TOKEN_TYPE = 'strata-download';

export interface SignedDownload {
  /** URL-safe (base64url and dots): put it in a query string as it is. */
  token: string;
  expiresAt: Date;
}

interface DownloadClaims {
  /** The tenant whose object it is: the only tenant the holder can ever reach with it. */
  tid: string;
  /** What the issuing module named (files: the file id). */
  res: string;
}

/**
 * Short-lived download capabilities for drivers that have no presigned URLs of their own (the local
 * driver): what S3 does with a SigV4 query string, for a public route of a domain module. A token is
 * an HS256 JWS (jose) over `{tid, res, aud, iat, exp}`, signed with a key derived from
 * AUTH_JWT_SECRET (HKDF, its own label), so it verifies on every instance and can never pass for a
 * bearer token, nor a bearer token for it.
 *
 * The tenant is inside the signature: open() takes it from the verified token and enters it with
 * TenantContext.run(), never from the wire, so altering the URL cannot reach another tenant's
 * object — it only breaks the signature.
 */
@Injectable()
export class SignedDownloads {
  private readonly key: KeyObject;

  constructor(
    @Inject(STRATA_CONFIG) config: StrataConfig,
    @Inject(STORAGE_OPTIONS) private readonly options: ResolvedStorageOptions,
    private readonly registry: TenantRegistry,
    private readonly context: TenantContext,
    private readonly cls: ClsService,
  ) {
    this.key = createSecretKey(Buffer.from(hkdfSync('sha256', config.jwtSecret, Buffer.alloc(0), 'strata:signed-downloads:v1', 32)));
  }

  /**
   * A token for `resource` of the current tenant, usable for `purpose` only, valid for
   * `expiresInSeconds` (default FILES_URL_TTL_SECONDS). Signing only: it does not check that the
   * resource exists (open() runs the caller's own lookup, as the tenant).
   */
  async issue(purpose: string, resource: string, opts: { expiresInSeconds?: number } = {}): Promise<SignedDownload> {
    const { tenant } = this.context.requireTenant('signing a download URL', 'downloads');
    assertPurpose(purpose);
    if (typeof resource !== 'string' || resource.length === 0 || resource.length > MAX_RESOURCE_LENGTH) {
      throw new RangeError(`a signed download names a resource of 1..${MAX_RESOURCE_LENGTH} characters`);
    }
    const ttl = opts.expiresInSeconds ?? this.options.urlTtlSeconds;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_URL_TTL_SECONDS) {
      throw new RangeError(`signed URL lifetime must be an integer in 1..${MAX_URL_TTL_SECONDS} seconds, got ${ttl}`);
    }
    // Whole seconds, like the JWT claims: expiresAt never claims more lifetime than `exp` gives.
    const now = Math.floor(Date.now() / 1000);
    const claims: DownloadClaims = { tid: tenant.id, res: resource };
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: TOKEN_TYPE })
      .setAudience(audienceOf(purpose))
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .sign(this.key);
    return { token, expiresAt: new Date((now + ttl) * 1000) };
  }

  /**
   * Verifies `token` for `purpose` and runs `work(resource)` as the tenant it names, in a context of
   * its own (TenantContext.run). A malformed, altered or foreign token answers 403
   * `signed_url_invalid`, a genuine expired one 403 `signed_url_expired` (only after its signature
   * verified, so forging never learns more than "invalid"); a tenant that is no longer active 404
   * `tenant_not_found`. `work` decides whether the resource still exists.
   */
  async open<T>(purpose: string, token: unknown, work: (resource: string) => Promise<T>): Promise<T> {
    assertPurpose(purpose);
    const claims = await this.verify(purpose, token);
    const tenant = await this.registry.findById(claims.tid);
    if (!tenant || tenant.status !== 'active') throw notFound('tenant_not_found', 'tenant not found');
    // The request id of the HTTP request (when there is one) follows into the tenant's context.
    const requestId = this.cls.isActive() ? this.cls.getId() : undefined;
    return this.context.run({ tenant: placementOf(tenant), ...(requestId ? { requestId } : {}) }, () => work(claims.res));
  }

  private async verify(purpose: string, token: unknown): Promise<DownloadClaims> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw new SignedUrlInvalidError();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        typ: TOKEN_TYPE,
        audience: audienceOf(purpose),
        requiredClaims: ['exp', 'iat', 'tid', 'res'],
        clockTolerance: 0,
      }));
    } catch (err) {
      // jose checks the signature first, so an expired verdict is only ever given to a genuine token.
      if (err instanceof joseErrors.JWTExpired) throw new SignedUrlExpiredError();
      if (err instanceof joseErrors.JOSEError) throw new SignedUrlInvalidError();
      throw err;
    }
    const { tid, res } = payload;
    // Signed by us, so these hold unless the key leaked; checked anyway before they reach a query.
    if (typeof tid !== 'string' || !UUID.test(tid) || typeof res !== 'string' || res.length === 0 || res.length > MAX_RESOURCE_LENGTH) {
      throw new SignedUrlInvalidError();
    }
    return { tid, res };
  }
}

function assertPurpose(purpose: string): void {
  if (!PURPOSE.test(purpose)) throw new Error(`signed download purpose must match ${PURPOSE}, got ${JSON.stringify(purpose)}`);
}

/** One audience per purpose: a token made for one public route is refused by every other. */
const audienceOf = (purpose: string) => `strata:download:${purpose}`;
