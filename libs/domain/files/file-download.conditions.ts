import parseRange from 'range-parser';
import type { ByteRange } from '#strata/storage';

/** The request headers a download answers to, as the client sent them. */
export interface DownloadConditions {
  range?: string;
  ifRange?: string;
  ifNoneMatch?: string;
}

export type DownloadPlan =
  /** The client's copy is current: 304, no body, storage not touched. */
  | { kind: 'not-modified' }
  | { kind: 'full' }
  | { kind: 'partial'; range: ByteRange }
  /** 416 with `Content-Range: bytes *\/{size}`. */
  | { kind: 'unsatisfiable' };

/**
 * A file's entity tag. Files are immutable (a new upload is a new id, and nothing rewrites an
 * object), so id and size name the bytes exactly: a strong validator, known from the row alone,
 * which lets a 304 be answered without opening the object.
 */
export const fileEtag = (file: { id: string; size: number }): string => `"${file.id}-${file.size}"`;

/** `"x"` and `W/"x"` compare equal for If-None-Match (RFC 9110 §8.8.3.2, weak comparison). */
const opaque = (tag: string) => tag.trim().replace(/^W\//, '');

/** RFC 9110 §13.1.2: `*` or any listed tag matching weakly means the client has it. */
function matchesNoneMatch(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => opaque(tag) === opaque(etag));
}

/**
 * What to send for a GET of a file of `size` bytes tagged `etag`, in RFC 9110's order: If-None-Match
 * first (a match is 304 whatever the Range), then If-Range (a range applies only to the
 * representation the client already has part of: a strong match of our tag; a date or another tag
 * gets the whole file), then Range, parsed by `range-parser` (the jshttp library Express and
 * `send` use). A malformed Range or a unit other than bytes is ignored (200, as the RFC says);
 * several ranges are answered with the whole file (200) rather than multipart/byteranges, which no
 * client of this API needs; overlapping ones are combined first, so `bytes=0-9,5-20` is one range.
 */
export function planDownload(conditions: DownloadConditions, resource: { etag: string; size: number }): DownloadPlan {
  if (conditions.ifNoneMatch !== undefined && matchesNoneMatch(conditions.ifNoneMatch, resource.etag)) return { kind: 'not-modified' };
  if (conditions.range === undefined) return { kind: 'full' };
  if (conditions.ifRange !== undefined && conditions.ifRange.trim() !== resource.etag) return { kind: 'full' };
  const ranges = parseRange(resource.size, conditions.range, { combine: true });
  if (ranges === -1) return { kind: 'unsatisfiable' };
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return { kind: 'full' };
  const [{ start, end }] = ranges;
  return { kind: 'partial', range: { start, end } };
}
