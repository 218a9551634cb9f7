import { createHash } from 'node:crypto';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, Min } from 'class-validator';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { badRequest } from './api.exception';

export const DEFAULT_PAGE_LIMIT = 20;
export const MAX_PAGE_LIMIT = 100;

/** `?limit=&cursor=` of every keyset-paginated list. List queries extend it with their filters. */
export class PageQuery {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT, description: 'items per page' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_LIMIT)
  limit: number = DEFAULT_PAGE_LIMIT;

  // Only "is a string" here: decoding happens in keysetWindow(), so that a damaged cursor answers
  // 400 invalid_cursor rather than a generic validation_failed.
  @ApiPropertyOptional({ description: 'the `nextCursor` of the previous page, exactly as returned' })
  @IsOptional()
  @IsString()
  cursor?: string;
}

/** The last row a client saw, in the list's order (created_at DESC, id DESC). */
export interface KeysetPosition {
  createdAt: Date;
  id: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** What a repository needs for one page: rows strictly after `after`, at most `take` of them. */
export interface KeysetWindow {
  after: KeysetPosition | null;
  take: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A cursor we issue is ~100 characters; the bound keeps Buffer/JSON work on hostile input small.
const BASE64URL = /^[A-Za-z0-9_-]{1,256}$/;

const invalidCursor = () => badRequest('invalid_cursor', 'cursor is malformed; pass back a nextCursor exactly as returned');

/**
 * The filters a list was asked with, as a short fingerprint the cursor carries: a cursor names a
 * position in one filtered list, and handed to the same list with other filters it would skip or
 * repeat rows without anyone noticing, so it is refused instead. Undefined filters are left out, so
 * `{}` and `{status: undefined}` are the same list.
 */
export function filterScope(filters: Record<string, string | Date | undefined>): string | undefined {
  const entries = Object.entries(filters)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])
    .sort(([a], [b]) => String(a).localeCompare(String(b)));
  if (!entries.length) return undefined;
  return createHash('sha256').update(JSON.stringify(entries)).digest('base64url').slice(0, 12);
}

export function encodeCursor(position: KeysetPosition, scope?: string): string {
  const fields = [position.createdAt.toISOString(), position.id, ...(scope ? [scope] : [])];
  return Buffer.from(JSON.stringify(fields), 'utf8').toString('base64url');
}

/** Reverses encodeCursor(); anything else, or a cursor of another filter scope, is ApiException 400 `invalid_cursor`. */
export function decodeCursor(cursor: string, scope?: string): KeysetPosition {
  // Buffer's base64url decoder silently skips foreign characters, so the alphabet is checked first.
  if (!BASE64URL.test(cursor)) throw invalidCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(parsed) || parsed.length < 2 || parsed.length > 3) throw invalidCursor();
  const [iso, id, issuedFor] = parsed as unknown[];
  if ((issuedFor ?? undefined) !== scope) {
    throw badRequest('invalid_cursor', 'cursor belongs to the same list with other filters; send the filters it was issued with, or start again without a cursor');
  }
  if (typeof iso !== 'string' || typeof id !== 'string' || !UUID.test(id)) throw invalidCursor();
  const createdAt = new Date(iso);
  // Only the exact form we emit: a looser date would name an instant other than the row's
  // (created_at is stored to the millisecond precisely so that this round trip is exact).
  if (Number.isNaN(createdAt.getTime()) || createdAt.toISOString() !== iso) throw invalidCursor();
  return { createdAt, id: id.toLowerCase() };
}

/**
 * Turns a validated page query into a repository window. One row more than the limit is fetched:
 * its presence is how toPage() knows that another page follows, without a COUNT.
 */
export function keysetWindow(query: { limit: number; cursor?: string }, scope?: string): KeysetWindow {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > MAX_PAGE_LIMIT) {
    throw new RangeError(`page limit must be an integer in 1..${MAX_PAGE_LIMIT}, got ${query.limit}`);
  }
  return { after: query.cursor === undefined ? null : decodeCursor(query.cursor, scope), take: query.limit + 1 };
}

/** Cuts the rows fetched through keysetWindow() to `limit` and names the cursor of the next page. */
export function toPage<R extends KeysetPosition, T>(rows: R[], limit: number, view: (row: R) => T, scope?: string): Page<T> {
  const items = rows.slice(0, limit);
  const nextCursor = rows.length > limit && items.length > 0 ? encodeCursor(items[items.length - 1], scope) : null;
  return { items: items.map(view), nextCursor };
}

/**
 * Applies a window to a query on `alias` (an entity with `createdAt` and `id`): newest first, ties
 * on the millisecond broken by id, so pages neither repeat nor skip rows. Matches the
 * `(tenant_id, created_at DESC, id DESC)` indexes when the query also filters on tenant_id.
 */
export function applyKeysetWindow<T extends ObjectLiteral>(
  query: SelectQueryBuilder<T>,
  alias: string,
  window: KeysetWindow,
): SelectQueryBuilder<T> {
  if (window.after) {
    query.andWhere(`(${alias}.createdAt, ${alias}.id) < (:keysetCreatedAt, :keysetId)`, {
      keysetCreatedAt: window.after.createdAt,
      keysetId: window.after.id,
    });
  }
  return query.orderBy(`${alias}.createdAt`, 'DESC').addOrderBy(`${alias}.id`, 'DESC').limit(window.take);
}
