import {
  InvalidUnicodeError,
  JsonTooDeepError,
  JsonTooManyValuesError,
  JsonTooWideError,
  MAX_JSON_DEPTH,
  MAX_JSON_MEMBERS,
  MAX_JSON_VALUES,
  strictJsonReviver,
} from './json-body.reviver';

const parse = (text: string) => JSON.parse(text, strictJsonReviver);
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('the strict JSON body reviver', () => {
  it(`accepts nesting up to ${MAX_JSON_DEPTH} levels and refuses one more`, () => {
    expect(() => parse(nested(MAX_JSON_DEPTH))).not.toThrow();
    expect(() => parse(nested(MAX_JSON_DEPTH + 1))).toThrow(JsonTooDeepError);
    expect(() => parse(`{"a":{"b":${nested(MAX_JSON_DEPTH - 2)}}}`)).not.toThrow();
    expect(() => parse(`{"a":{"b":${nested(MAX_JSON_DEPTH - 1)}}}`)).toThrow(JsonTooDeepError);
  });

  it('keeps well-formed text, surrogate pairs (emoji) included, and returns the same value', () => {
    expect(parse('{"name":"Café 😀 \\ud83d\\ude00","n":[1,{"x":null}]}')).toEqual({ name: 'Café 😀 😀', n: [1, { x: null }] });
  });

  it.each(['"\\ud800"', '"a\\udfffb"', '{"\\udc00":1}', '["ok","\\ud83d"]'])('refuses the lone surrogate in %s', (text) => {
    expect(() => parse(text)).toThrow(InvalidUnicodeError);
  });

  it(`accepts objects and arrays of up to ${MAX_JSON_MEMBERS} members and refuses one more`, () => {
    const array = (n: number) => `[${Array.from({ length: n }, () => '0').join(',')}]`;
    const object = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',')}}`;
    expect(() => parse(array(MAX_JSON_MEMBERS))).not.toThrow();
    expect(() => parse(object(MAX_JSON_MEMBERS))).not.toThrow();
    expect(() => parse(array(MAX_JSON_MEMBERS + 1))).toThrow(JsonTooWideError);
    expect(() => parse(`{"a":${object(MAX_JSON_MEMBERS + 1)}}`)).toThrow(JsonTooWideError);
  });

  it(`counts every value of the body, refusing more than ${MAX_JSON_VALUES} however they are spread`, () => {
    // n arrays of m zeros: 1 + n × (1 + m) values.
    const grid = (n: number, m: number) => `[${Array.from({ length: n }, () => `[${Array.from({ length: m }, () => '0').join(',')}]`).join(',')}]`;
    expect(() => parse(grid(11, 907))).not.toThrow(); // 1 + 11 × 908 = 9989
    expect(() => parse(grid(11, 909))).toThrow(JsonTooManyValuesError); // 10 010
    expect(() => parse(`{"a":{"b":${grid(11, 909)}}}`)).toThrow(JsonTooManyValuesError);
  });

  it('names stable error codes', () => {
    expect(new JsonTooDeepError().code).toBe('json_too_deep');
    expect(new InvalidUnicodeError().code).toBe('invalid_unicode');
    expect(new JsonTooWideError().code).toBe('json_too_wide');
    expect(new JsonTooManyValuesError().code).toBe('json_too_many_values');
  });
});
