import type { ValueTransformer } from 'typeorm';

/**
 * bigint ↔ JS number. node-postgres returns bigint as a string because it may not fit a double;
 * amounts are integers in minor units that the API keeps within Number.MAX_SAFE_INTEGER, so a
 * number is exact (the same holds for byte counts). A value outside that range fails loudly instead
 * of being silently rounded.
 */
export const safeIntegerTransformer: ValueTransformer = {
  to(value: number | null | undefined): number | null | undefined {
    if (value !== null && value !== undefined && !Number.isSafeInteger(value)) {
      throw new RangeError(`refusing to store ${value}: not a safe integer`);
    }
    return value;
  },
  from(value: string | number | null): number | null {
    if (value === null) return null;
    const n = typeof value === 'number' ? value : Number(value);
    if (!Number.isSafeInteger(n) || (typeof value === 'string' && !/^-?\d+$/.test(value))) {
      throw new RangeError(`bigint ${value} does not fit a JS number exactly`);
    }
    return n;
  },
};
