import { InvalidUnicodeError, JsonTooDeepError, MAX_JSON_DEPTH, strictJsonReviver } from './json-body.reviver';

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

  it('names stable error codes', () => {
    expect(new JsonTooDeepError().code).toBe('json_too_deep');
    expect(new InvalidUnicodeError().code).toBe('invalid_unicode');
  });
});
