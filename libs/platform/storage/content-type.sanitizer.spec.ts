import { FALLBACK_CONTENT_TYPE, sanitizeContentType } from './content-type.sanitizer';
import { parse } from 'content-disposition';
import { attachmentDisposition } from './content-disposition.header';

describe('content type sanitizing', () => {
  it.each([
    ['image/png', 'image/png'],
    ['IMAGE/PNG', 'image/png'],
    ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
    ['image/svg+xml', 'image/svg+xml'],
    ['text/plain; charset=UTF-8', 'text/plain; charset=utf-8'],
    ['text/plain;charset="utf-8"', 'text/plain; charset=utf-8'],
    ['text/csv; header=present; charset=utf-8', 'text/csv; charset=utf-8'],
    ['text/plain; boundary=x', 'text/plain'],
  ])('keeps %p as %p', (claimed, kept) => {
    expect(sanitizeContentType(claimed)).toBe(kept);
  });

  it.each([
    '',
    'png',
    'image/',
    '/png',
    'image/png/x',
    'text/html\r\nSet-Cookie: a=b',
    'text/plain\u0000',
    'text /plain',
    'tëxt/plain',
    'a/' + 'b'.repeat(300),
    undefined,
    null,
    42,
  ])('falls back to application/octet-stream for %p', (claimed) => {
    expect(sanitizeContentType(claimed)).toBe(FALLBACK_CONTENT_TYPE);
  });

  it('passes nothing on from a header that does not parse (CR/LF injection)', () => {
    expect(sanitizeContentType('text/plain; charset=utf-8\r\nX: y')).toBe(FALLBACK_CONTENT_TYPE);
  });
});

describe('attachment Content-Disposition', () => {
  it('percent-encodes the UTF-8 name and gives an ASCII fallback', () => {
    const header = attachmentDisposition('Quartalsbericht Q1 – März.pdf');
    expect(header).toMatch(/^attachment; filename="Quartalsbericht Q1 \? M\?rz\.pdf"; /);
    expect(header).toContain(`filename*=UTF-8''Quartalsbericht%20Q1%20%E2%80%93%20M%C3%A4rz.pdf`);
    expect(parse(header).parameters.filename).toBe('Quartalsbericht Q1 – März.pdf');
  });

  it('names an empty file "download" rather than letting the browser guess', () => {
    expect(parse(attachmentDisposition('')).parameters.filename).toBe('download');
  });

  it('never lets quotes, CR/LF or semicolons through raw', () => {
    const header = attachmentDisposition('a"; filename=evil.exe\r\nX-Injected: 1');
    expect(header).not.toMatch(/[\r\n]/);
    // One filename parameter pair, which reads back as exactly the name given: nothing was injected.
    const parsed = parse(header);
    expect(parsed.type).toBe('attachment');
    expect(Object.keys(parsed.parameters).sort()).toEqual(['filename']);
    expect(parsed.parameters.filename).toBe('a"; filename=evil.exe\r\nX-Injected: 1');
  });
});
