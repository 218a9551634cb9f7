import { safeIntegerTransformer } from './safe-integer.transformer';

describe('safe integer transformer', () => {
  it('reads a bigint string as an exact number', () => {
    expect(safeIntegerTransformer.from('0')).toBe(0);
    expect(safeIntegerTransformer.from('123456')).toBe(123456);
    expect(safeIntegerTransformer.from(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('refuses to round a bigint beyond MAX_SAFE_INTEGER', () => {
    expect(() => safeIntegerTransformer.from('9007199254740993')).toThrow(RangeError);
    expect(() => safeIntegerTransformer.from('9223372036854775807')).toThrow(RangeError);
  });

  it('refuses text that is not an integer', () => {
    expect(() => safeIntegerTransformer.from('12.5')).toThrow(RangeError);
    expect(() => safeIntegerTransformer.from('')).toThrow(RangeError);
  });

  it('passes null through both ways', () => {
    expect(safeIntegerTransformer.from(null)).toBeNull();
    expect(safeIntegerTransformer.to(null)).toBeNull();
  });

  it('writes safe integers unchanged and refuses anything else', () => {
    expect(safeIntegerTransformer.to(1999)).toBe(1999);
    expect(() => safeIntegerTransformer.to(Number.MAX_SAFE_INTEGER + 1)).toThrow(RangeError);
    expect(() => safeIntegerTransformer.to(10.5)).toThrow(RangeError);
  });
});
