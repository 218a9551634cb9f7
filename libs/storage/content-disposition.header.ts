// RFC 8187 attr-char: what may stay unencoded in filename*=UTF-8''…
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

/**
 * `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): the quoted ASCII fallback for old
 * clients, the percent-encoded UTF-8 name for everyone else. The name never reaches the header
 * raw, so quotes, CR/LF and non-ASCII cannot split or spoof it.
 */
export function attachmentDisposition(filename: string): string {
  const fallback = filename.normalize('NFKD').replace(/\p{M}/gu, '').replace(/[^\x20-\x7e]|["\\%]/g, '_') || 'download';
  let encoded = '';
  for (const char of filename) {
    encoded += ATTR_CHAR.test(char)
      ? char
      : Array.from(Buffer.from(char, 'utf8'), (b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
