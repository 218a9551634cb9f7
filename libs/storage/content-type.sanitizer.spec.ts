import { FALLBACK_CONTENT_TYPE, sanitizeContentType } from './content-type.sanitizer';
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

  it('drops a charset that is not a token instead of passing it on', () => {
    expect(sanitizeContentType('text/plain; charset=utf-8\r\nX: y')).toBe('text/plain');
  });
});

describe('attachment Content-Disposition', () => {
  it('percent-encodes the UTF-8 name and gives an ASCII fallback', () => {
    expect(attachmentDisposition('Quartalsbericht Q1 – März.pdf')).toBe(
      `attachment; filename="Quartalsbericht Q1 _ Marz.pdf"; filename*=UTF-8''Quartalsbericht%20Q1%20%E2%80%93%20M%C3%A4rz.pdf`,
    );
  });

  it('never lets quotes, CR/LF or semicolons through raw', () => {
    const header = attachmentDisposition('a"; filename=evil.exe\r\nX-Injected: 1');
    expect(header).not.toMatch(/[\r\n]/);
    expect(header).toBe(
      `attachment; filename="a_; filename=evil.exe__X-Injected: 1"; filename*=UTF-8''a%22%3B%20filename%3Devil.exe%0D%0AX-Injected%3A%201`,
    );
  });
});
