import { demoBaseUrl, demoHelp } from './demo-seed';

const input = { base: 'http://127.0.0.1:3000', adminToken: 'admin.jwt.token', acmeId: 'acme-id', corsOrigins: ['http://localhost:5173'], openapiEnabled: true, signupEnabled: true };
const banner = demoHelp(input);
const lines = banner.split('\n');

describe('the demo banner', () => {
  it('ends every curl that prints an answer with a newline, so the next prompt starts on its own line', () => {
    const printing = lines.filter((l) => l.startsWith('curl ') && !l.includes(' -i '));
    expect(printing.length).toBeGreaterThan(10);
    for (const l of printing) expect(l).toMatch(/^curl -s -w '\\n' /);
    // Those captured into a variable stay as they were: $(…) drops the newline anyway.
    expect(lines.filter((l) => /^[A-Z]+=\$\(curl /.test(l))).toHaveLength(3);
  });

  it('ends with a newline and uses the base URL it is given everywhere', () => {
    expect(banner.endsWith('\n')).toBe(true);
    const urls = banner.match(/https?:\/\/[^\s/'"]+/g) ?? [];
    expect(new Set(urls.filter((u) => !u.includes('5173') && !u.includes('example.com')))).toEqual(new Set(['http://127.0.0.1:3000']));
  });

  it("shows an owner how to export the tenant's data and download the archive", () => {
    expect(banner).toContain(`EXPORT=$(curl -s -X POST http://127.0.0.1:3000/t/acme/export -H "authorization: Bearer $TOKEN" | sed -E 's/.*"id":"([^"]+)".*/\\1/')`);
    expect(banner).toContain(`curl -s -w '\\n' -OJ http://127.0.0.1:3000/t/acme/export/$EXPORT/archive -H "authorization: Bearer $TOKEN"`);
  });

  it("shows the operators' audit log of acme", () => {
    expect(banner).toContain(`curl -s -w '\\n' "http://127.0.0.1:3000/admin/audit?tenantId=acme-id&limit=5" -H "authorization: Bearer $ADMIN"`);
  });

  it('shows the self-service signup call when SIGNUP_ENABLED is on, and not when it is off', () => {
    const signup = `curl -s -w '\\n' -X POST http://127.0.0.1:3000/signup -H 'content-type: application/json' -d '{"company":"Hooli"`;
    expect(banner).toContain(signup);
    expect(demoHelp({ ...input, signupEnabled: false })).not.toContain('/signup');
  });

  it('shows a file download URL that needs no token', () => {
    expect(banner).toContain(`curl -s -w '\\n' http://127.0.0.1:3000/t/acme/files/$FILE/url -H "authorization: Bearer $TOKEN"`);
  });
});

describe('demoBaseUrl', () => {
  it('reaches a wildcard address on loopback and a specific one as it is', () => {
    expect(demoBaseUrl({ address: '127.0.0.1', family: 'IPv4', port: 3000 })).toBe('http://127.0.0.1:3000');
    expect(demoBaseUrl({ address: '0.0.0.0', family: 'IPv4', port: 8080 })).toBe('http://127.0.0.1:8080');
    expect(demoBaseUrl({ address: '::', family: 'IPv6', port: 8080 })).toBe('http://127.0.0.1:8080');
    expect(demoBaseUrl({ address: '::1', family: 'IPv6', port: 3000 })).toBe('http://[::1]:3000');
    expect(demoBaseUrl({ address: '10.1.2.3', family: 'IPv4', port: 3000 })).toBe('http://10.1.2.3:3000');
  });
});
