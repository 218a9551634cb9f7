import { create } from 'content-disposition';

/**
 * `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266/8187) by jshttp's content-disposition
 * (what Express's res.attachment() uses): a quoted fallback for old clients, the percent-encoded
 * UTF-8 name for everyone else, so quotes, CR/LF and non-ASCII cannot split or spoof the header.
 * An empty name still gets a filename, so browsers never guess one from the URL.
 */
export function attachmentDisposition(filename: string): string {
  return create(filename || 'download', { type: 'attachment' });
}
