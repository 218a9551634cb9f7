import { format, parse } from 'content-type';

export const FALLBACK_CONTENT_TYPE = 'application/octet-stream';

/**
 * The content type a client claimed, reduced to `type/subtype` (lower case) plus its charset, or
 * application/octet-stream. Parsed by jshttp's content-type (RFC 9110), the parser Express uses:
 * it ends up in a response header and in S3 metadata, so anything that does not parse (CR/LF,
 * quotes, comments) is not passed on, and every other parameter is dropped.
 */
export function sanitizeContentType(claimed: unknown): string {
  if (typeof claimed !== 'string' || claimed.length > 255) return FALLBACK_CONTENT_TYPE;
  try {
    const { type, parameters } = parse(claimed);
    const charset = parameters.charset?.toLowerCase();
    return format({ type, parameters: charset ? { charset } : {} });
  } catch {
    return FALLBACK_CONTENT_TYPE;
  }
}
