import type { ValueTransformer } from 'typeorm';

/**
 * bigint ↔ JS number for byte counts. node-postgres returns bigint as a string; sizes are capped
 * by FILES_MAX_BYTES far below Number.MAX_SAFE_INTEGER, so a number is exact, and anything that
 * is not fails loudly instead of being rounded.
 */
export const byteCountTransformer: ValueTransformer = {
  to(value: number | null | undefined): number | null | undefined {
    if (value !== null && value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new RangeError(`refusing to store ${value} as a byte count`);
    }
    return value;
  },
  from(value: string | number | null): number | null {
    if (value === null) return null;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0 || (typeof value === 'string' && !/^\d+$/.test(value))) {
      throw new RangeError(`byte count ${value} does not fit a JS number exactly`);
    }
    return n;
  },
};
