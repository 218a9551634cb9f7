import { corsOriginAllowed, corsOptionsOf, parseCorsOrigins } from './cors.policy';

describe('CORS policy', () => {
  it('reads a comma-separated list of exact origins and subdomain patterns, normalised', () => {
    expect(parseCorsOrigins(' https://App.example.com/ , https://*.strata.example:8443,http://localhost:5173', false)).toEqual([
      'https://app.example.com',
      'https://*.strata.example:8443',
      'http://localhost:5173',
    ]);
    expect(parseCorsOrigins(undefined, false)).toEqual([]);
  });

  it('refuses * when credentials are on, * beside other origins, and anything that is not an origin', () => {
    expect(() => parseCorsOrigins('*', true)).toThrow(/cannot be combined with CORS_CREDENTIALS/);
    expect(() => parseCorsOrigins('*,https://a.example', false)).toThrow(/stands alone/);
    expect(() => parseCorsOrigins('https://app.example.com/path', false)).toThrow(/not an origin/);
    expect(() => parseCorsOrigins('app.example.com', false)).toThrow(/not an origin/);
    expect(() => parseCorsOrigins('https://*.*.example.com', false)).toThrow(/not an origin/);
    expect(parseCorsOrigins('*', false)).toEqual(['*']);
  });

  it('allows exact origins and one subdomain label of a pattern, with the same scheme and port', () => {
    const origins = ['https://app.example.com', 'https://*.strata.example'];
    expect(corsOriginAllowed(origins, 'https://app.example.com')).toBe(true);
    expect(corsOriginAllowed(origins, 'https://acme.strata.example')).toBe(true);
    expect(corsOriginAllowed(origins, 'https://a.b.strata.example')).toBe(false);
    expect(corsOriginAllowed(origins, 'https://strata.example')).toBe(false);
    expect(corsOriginAllowed(origins, 'http://acme.strata.example')).toBe(false);
    expect(corsOriginAllowed(origins, 'https://acme.strata.example:8443')).toBe(false);
    expect(corsOriginAllowed(origins, 'https://evilstrata.example')).toBe(false);
    expect(corsOriginAllowed(origins, 'https://app.example.com.evil.test')).toBe(false);
    expect(corsOriginAllowed(origins, undefined)).toBe(false);
  });

  it('turns CORS off when no origin is configured', () => {
    expect(corsOptionsOf({ corsOrigins: [], corsCredentials: false })).toBeUndefined();
  });
});
