export const FALLBACK_CONTENT_TYPE = 'application/octet-stream';

// RFC 6838 restricted-name for type and subtype; RFC 9110 token for the charset value.
const NAME = '[a-z0-9][a-z0-9!#$&^_.+-]{0,126}';
const MEDIA_TYPE = new RegExp(`^${NAME}/${NAME}$`);
const CHARSET = /^charset=("?)([a-z0-9!#$%&'*+.^_`|~-]{1,64})\1$/;

/**
 * The content type a client claimed, reduced to `type/subtype` (lower case) plus a valid charset,
 * or application/octet-stream. It ends up in a response header and in S3 metadata, so anything that
 * is not plainly a media type (CR/LF, quotes, comments, 40 parameters) is not passed on; other
 * parameters are dropped rather than parsed.
 */
export function sanitizeContentType(claimed: unknown): string {
  if (typeof claimed !== 'string' || claimed.length > 255) return FALLBACK_CONTENT_TYPE;
  const [essence, ...params] = claimed.toLowerCase().split(';').map((p) => p.trim());
  if (!MEDIA_TYPE.test(essence)) return FALLBACK_CONTENT_TYPE;
  const charset = params.map((p) => CHARSET.exec(p.replace(/\s*=\s*/, '='))).find(Boolean);
  return charset ? `${essence}; charset=${charset[2]}` : essence;
}
