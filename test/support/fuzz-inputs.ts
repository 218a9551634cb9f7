import fc from 'fast-check';
import type { DtoField, FieldRule } from './route-catalog';

/**
 * fast-check arbitraries for hostile HTTP input: JSON values with the numbers, strings and shapes
 * JSON.stringify cannot produce (1e309, -0, 2^63, lone surrogates, duplicate and `__proto__` keys,
 * deep nesting), values for path segments, query strings and headers including broken
 * percent-encoding, and valid values derived from a DTO field's class-validator rules.
 */

// ─── JSON text, including what JSON.stringify never writes ───────────────────────────────────────

/** JSON text emitted verbatim (`1e309`, `-0`, `[[[…]]]`). */
export class Raw {
  constructor(readonly text: string) {}
}

/** A JSON object as its entries, so keys may repeat or be `__proto__`. */
export class Entries {
  constructor(readonly entries: Array<[string, Json]>) {}
}

export type Json = null | boolean | number | string | Raw | Entries | Json[];

/** Leaves the field out of its object. */
export const ABSENT = Symbol('absent');
export type FieldValue = Json | typeof ABSENT;

export function jsonText(value: Json): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Entries) return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  return JSON.stringify(value) ?? 'null';
}

/** A short, readable rendering of a JSON value for failure reports. */
export function preview(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

export const objectOf = (fields: Record<string, FieldValue>): Entries =>
  new Entries(Object.entries(fields).filter((e): e is [string, Json] => e[1] !== ABSENT));

// Sizes around the JSON body limit (256 KiB, app.factory): just under it and over it.
const JUST_UNDER_BODY_LIMIT = 200_000;
const OVER_BODY_LIMIT = 300_000;

const nested = (depth: number, open = '[', close = ']') => new Raw(`${open.repeat(depth)}${close.repeat(depth)}`);
const nestedObjects = (depth: number) => new Raw(`${'{"a":'.repeat(depth)}null${'}'.repeat(depth)}`);

/** Numbers as JSON text: overflow, negative zero, beyond 2^53 and 2^63, underflow, long mantissas. */
export const oddNumber: fc.Arbitrary<Json> = fc.constantFrom<Json>(
  new Raw('1e309'),
  new Raw('-1e309'),
  new Raw('-0'),
  new Raw('-0.0'),
  new Raw('9223372036854775808'),
  new Raw('-9223372036854775809'),
  new Raw('9007199254740993'),
  new Raw('1e-400'),
  new Raw('1E2'),
  new Raw('123456789012345678901234567890'),
  new Raw('0.1e1'),
  2 ** 31,
  2 ** 32,
  -(2 ** 31) - 1,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  0.5,
  -1,
  0,
);

/** Strings that have broken parsers, databases or headers before. */
export const oddString: fc.Arbitrary<string> = fc.constantFrom(
  '',
  ' ',
  '\t\r\n',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'a\udfffb',
  '\udc00\ud800',
  '\ufeff',
  '\u202egpj.exe',
  '\u2028\u2029',
  'İıß\u0130ǅ',
  '😀'.repeat(50),
  'e\u0301'.repeat(10),
  'null',
  'undefined',
  'true',
  '0',
  '-1',
  '1e309',
  'NaN',
  '[]',
  '{}',
  '%',
  '%E0%A4%A',
  '%00',
  '../../../etc/passwd',
  "' OR 1=1 --",
  '"; DROP TABLE x; --',
  '$1',
  '\\',
  '<script>alert(1)</script>',
  '${jndi:ldap://x}',
  '__proto__',
  'constructor',
  'x'.repeat(256),
  'y'.repeat(5001),
);

const smallJson: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false),
  fc.integer(),
  fc.string({ maxLength: 8 }),
  oddNumber,
);

/** A value of the wrong kind for any field, or the right kind with a hostile content. */
export const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<Json>(null, true, false, 0, 1, -1, '', 'x') },
  { weight: 3, arbitrary: oddNumber },
  { weight: 4, arbitrary: oddString },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 20 }) },
  { weight: 2, arbitrary: fc.double().map((d) => (Number.isFinite(d) ? d : new Raw(String(d)))) },
  { weight: 2, arbitrary: fc.array(smallJson, { maxLength: 4 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<Json>(
      new Entries([]),
      new Entries([['$gt', '']]),
      new Entries([['__proto__', new Entries([['isAdmin', true]])]]),
      new Entries([['constructor', new Entries([['prototype', new Entries([['x', 1]])]])]]),
      new Entries([['toString', 1]]),
      [[]],
      [new Entries([])],
    ),
  },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), smallJson, { maxKeys: 3 }).map((d) => new Entries(Object.entries(d))) },
  { weight: 1, arbitrary: fc.constantFrom(31, 32, 33, 1000).map((d) => nested(d)) },
  { weight: 1, arbitrary: fc.constantFrom(33, 5000).map(nestedObjects) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Json>(
      'a'.repeat(JUST_UNDER_BODY_LIMIT),
      'é'.repeat(JUST_UNDER_BODY_LIMIT / 2),
      '\\'.repeat(JUST_UNDER_BODY_LIMIT / 2),
      'a'.repeat(OVER_BODY_LIMIT),
    ),
  },
);

/** A whole body that is not the object a DTO route expects. */
export const hostileBodyText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '{',
    '[',
    '}',
    'null',
    '"a string"',
    '42',
    'true',
    '[]',
    '[{}]',
    '{}',
    '{"a":1,"a":2}',
    '{"__proto__":{"polluted":true}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    "{'single':'quotes'}",
    '{"a":1}trailing',
    '{"a":1,}',
    '\ufeff{}',
    '{"\\ud800":1}',
    '{"a":"\\ud800"}',
    '{"a":"\\u0000"}',
    '{"a":01}',
    '{"a":.5}',
    '{"a":+1}',
    '{"a":0x10}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":1e309}',
    '{"a":"\\x41"}',
    '{"a":"\\uZZZZ"}',
  ),
  fc.constantFrom(32, 33, 10_000, 100_000).map((d) => nested(d).text),
  fc.constantFrom(33, 20_000).map((d) => nestedObjects(d).text),
  fc.constantFrom(`[${'1,'.repeat(60_000)}1]`, `{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`),
  fc.json({ maxDepth: 3 }),
);

// ─── valid values from class-validator rules ────────────────────────────────────────────────────

/**
 * Examples for validators whose rules cannot be read from their metadata (custom `ValidateBy`s).
 * A DTO that uses a validator missing here fails the fuzz suite's completeness test, which says to
 * add it, so that valid bodies keep reaching past validation.
 */
const QUOTA_PATCH = fc.record(
  Object.fromEntries(['projects', 'invoicesPerMonth', 'storageBytes', 'webhookEndpoints'].map((k) => [k, fc.option(fc.nat(100_000), { nil: null })])),
  { requiredKeys: [] },
) as unknown as fc.Arbitrary<FieldValue>;

export const VALID_EXAMPLES: Record<string, fc.Arbitrary<FieldValue>> = {
  isIsoCurrency: fc.constantFrom('EUR', 'USD', 'JPY', 'CHF', 'XAU', 'XXX', 'BHD'),
  // Ids in bodies and filters (audit, impersonation); mostly unknown ones, which is the point.
  isUuid: fc.uuid(),
  // Exists only to carry a class-level rule; the client never sends it.
  atLeastOneOf: fc.constant(ABSENT),
  // Nested DTOs. The only one so far is PATCH /admin/plans/:id `quotas` (PlanQuotasPatch: optional
  // ints ≥ 0 or null); a nested DTO of another shape needs its own example here.
  isObject: QUOTA_PATCH,
  nestedValidation: QUOTA_PATCH,
};

const KNOWN_RULES = new Set([
  'isString',
  'isLength',
  'minLength',
  'maxLength',
  'matches',
  'isIn',
  'isInt',
  'min',
  'max',
  'isEmail',
  'isArray',
  'arrayMinSize',
  'arrayMaxSize',
  'arrayUnique',
  'isBoolean',
  'isIso8601',
]);

/** Rules of a field the fuzzer cannot make a valid value for. */
export const unsupportedRules = (field: DtoField): string[] =>
  field.rules.map((r) => r.name).filter((n) => !KNOWN_RULES.has(n) && !(n in VALID_EXAMPLES));

const rule = (rules: FieldRule[], name: string, each = false) => rules.find((r) => r.name === name && r.each === each);
const bound = (rules: FieldRule[], name: string, index = 0) => rule(rules, name)?.constraints[index] as number | undefined;

// class-validator measures length in code points (validator.js isLength).
const codePoints = (s: string) => [...s].length;

function lengthRange(rules: FieldRule[]): [number, number] {
  let min = bound(rules, 'minLength') ?? bound(rules, 'isLength', 0) ?? 0;
  let max = bound(rules, 'maxLength') ?? bound(rules, 'isLength', 1) ?? 1000;
  if (rule(rules, 'isLength')) {
    min = Math.max(min, bound(rules, 'isLength', 0) ?? 0);
    max = Math.min(max, bound(rules, 'isLength', 1) ?? max);
  }
  return [min, max];
}

/** A value the field's rules accept (most of the time: the generators aim, the server decides). */
export function validValue(field: DtoField, hint?: fc.Arbitrary<FieldValue>): fc.Arbitrary<FieldValue> {
  if (hint) return hint;
  const rules = field.rules;
  for (const r of rules) if (r.name in VALID_EXAMPLES) return VALID_EXAMPLES[r.name];
  const patterns = rules.filter((r) => r.name === 'matches').map((r) => r.constraints[0] as RegExp);
  const matchesAll = (v: string) => patterns.every((p) => new RegExp(p.source, p.flags).test(v));
  if (rule(rules, 'isBoolean')) return fc.boolean();
  if (rule(rules, 'isIso8601')) {
    // Instants (and days) in every form ISO 8601 allows, from year 0001 to 9999; a field's own
    // pattern keeps the forms it takes (each form is generated often enough for the filter to pass).
    const at = fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString());
    return fc
      .oneof(
        at,
        at.map((iso) => iso.replace(/\.\d{3}Z$/, 'Z')),
        at.map((iso) => iso.replace('Z', '+14:00')),
        at.map((iso) => iso.replace(/:\d{2}\.\d{3}Z$/, '-12:00')),
        at.map((iso) => iso.slice(0, 10)),
      )
      .filter(matchesAll);
  }
  const isIn = rule(rules, 'isIn');
  if (isIn) return fc.constantFrom(...(isIn.constraints[0] as string[]));
  if (rule(rules, 'isArray')) {
    const each = rule(rules, 'isIn', true);
    const item = each ? fc.constantFrom(...(each.constraints[0] as string[])) : fc.string({ minLength: 1, maxLength: 20 });
    const minLength = bound(rules, 'arrayMinSize') ?? 0;
    const maxLength = bound(rules, 'arrayMaxSize') ?? 5;
    return rule(rules, 'arrayUnique') ? fc.uniqueArray(item, { minLength, maxLength }) : fc.array(item, { minLength, maxLength });
  }
  if (rule(rules, 'isInt')) {
    const min = bound(rules, 'min') ?? Number.MIN_SAFE_INTEGER;
    const max = bound(rules, 'max') ?? Number.MAX_SAFE_INTEGER;
    return fc.oneof(fc.constantFrom(min, max), fc.bigInt(BigInt(min), BigInt(max)).map(Number));
  }
  const [minLength, maxLength] = lengthRange(rules);
  if (rule(rules, 'isEmail')) return fc.emailAddress().filter((e) => e.length <= maxLength);
  const fits = (s: string) => codePoints(s) >= minLength && codePoints(s) <= maxLength && matchesAll(s);
  // A pattern shapes the strings itself: free strings would almost never match a slug-like one.
  const free = patterns.length
    ? [fc.stringMatching(patterns[0], { maxLength: Math.min(maxLength, 80) })]
    : [fc.string({ unit: 'grapheme', minLength, maxLength: Math.min(maxLength, 60) }), fc.string({ unit: 'binary', minLength, maxLength: Math.min(maxLength, 60) })];
  return fc
    .oneof(
      ...free,
      // The longest value the rules allow, in letters that take 1, 2 and 4 bytes of UTF-8.
      fc.constantFrom('a', 'é', '😀').map((c) => c.repeat(maxLength)),
    )
    .filter(fits);
}

// ─── URL pieces ─────────────────────────────────────────────────────────────────────────────────

/** Already URL text: sent as is, including malformed percent-encoding. */
export class UrlText {
  constructor(readonly text: string) {}
}

/** A path segment or query value: a plain string (percent-encoded when sent) or URL text. */
export type UrlPiece = string | UrlText;

export const urlText = (piece: UrlPiece): string => (piece instanceof UrlText ? piece.text : encodeURIComponent(piece));

/** Segment text that percent-decoding chokes on, or that routers and file systems treat specially. */
export const oddUrlText: fc.Arbitrary<UrlText> = fc
  .constantFrom(
    '%',
    '%%',
    '%E0%A4%A',
    '%ZZ',
    '%00',
    '%2F',
    '%5C',
    '%2e%2e',
    '..',
    '.',
    '%C0%AF',
    '%ED%A0%80',
    '%FF%FE',
    '%C3%28',
    '\u00ff\u00e9',
    '%F0%9F%98%80',
    '%E2%80%AE',
    '+',
    ';',
    ';a=b',
    ':',
    '@',
    '~',
    '!$&\'()*,=',
    '%20',
    '%09',
    '%0D%0A',
    '%25',
    '%u0041',
    '0',
    '-1',
    '1e309',
    'NaN',
    'true',
    'null',
    'undefined',
    '[]',
    '{}',
    'a'.repeat(2000),
  )
  .map((t) => new UrlText(t));

/** A path parameter that is not a plain id: known ids bent out of shape, wrong types, huge, broken encodings, unicode. */
export function hostilePathValue(ids: fc.Arbitrary<string>): fc.Arbitrary<UrlPiece> {
  return fc.oneof(
    { weight: 1, arbitrary: ids.map((id) => id.toUpperCase()) },
    {
      weight: 2,
      arbitrary: ids.chain((id) =>
        fc.constantFrom<UrlPiece>(
          new UrlText(`${id}%00`),
          new UrlText(`${id}.json`),
          new UrlText(`${id}%20`),
          new UrlText(`%20${id}`),
          new UrlText(`{${id}}`),
          new UrlText(id.replace(/-/g, '')),
          new UrlText(`${id}/`),
          new UrlText(`${id}${id}`),
          `${id}\u0000`,
        ),
      ),
    },
    { weight: 4, arbitrary: oddUrlText },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
    { weight: 1, arbitrary: fc.constantFrom('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'g'.repeat(36), 'x'.repeat(6000)) },
  );
}

/** A query value of the wrong shape: signs, bases, widths, scripts and encodings a number parser may trip on. */
export const hostileQueryValue: fc.Arbitrary<UrlPiece> = fc.oneof(
  fc.constantFrom<UrlPiece>('', ' ', '0', '-1', '-0', '101', '1.5', '1e2', '1e309', '0x10', '0b1', '010', ' 5', '5 ', '+5', '５', '١٠', 'NaN', 'Infinity', '9'.repeat(400), 'true', 'null', '[]', '{}'),
  oddUrlText,
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);

// ─── headers ────────────────────────────────────────────────────────────────────────────────────

/** Node's client sends header values as latin1 bytes: text becomes its UTF-8 bytes, minus what HTTP forbids. */
export const headerSafe = (value: string): string =>
  Buffer.from(value, 'utf8')
    .toString('latin1')
    .replace(/[^\t\x20-\x7e\x80-\xff]/g, '');

export const oddContentType: fc.Arbitrary<string> = fc.constantFrom(
  'application/json; charset=utf-16',
  'application/json; charset=utf-16le',
  'application/json; charset=latin1',
  'application/json; charset=us-ascii',
  'application/json; charset=bogus',
  'application/json; charset=',
  'application/json; charset="utf-8"',
  'application/json; charset=utf-8; charset=utf-16',
  'APPLICATION/JSON',
  'application/json;;;',
  'application/json, text/plain',
  'application/vnd.api+json',
  'application/merge-patch+json',
  'application/x-www-form-urlencoded',
  'text/plain',
  'text/json',
  'multipart/form-data',
  'multipart/form-data; boundary=',
  'multipart/form-data; boundary=x',
  'multipart/mixed; boundary=x',
  'application/octet-stream',
  '*/*',
  '',
  ';',
  'application/',
  '/json',
  'x'.repeat(2000),
);

export const oddAccept: fc.Arbitrary<string> = fc.constantFrom(
  'text/html',
  'application/xml',
  'image/png',
  '*/*;q=0',
  'application/json;q=0',
  '',
  'garbage',
  ';;;',
  'a/b, c/d;q=2, */*;q=-1',
  `${'application/json,'.repeat(500)}*/*`,
);

/** Headers a client may send along, any of them malformed. */
export const oddExtraHeader: fc.Arbitrary<[string, string | string[]]> = fc.oneof(
  fc.constantFrom<[string, string]>(
    ['x-request-id', 'short'],
    ['x-request-id', 'a'.repeat(500)],
    ['x-request-id', '../../etc\u00ff'],
    ['x-request-id', 'valid-request-id-0001'],
    ['traceparent', '00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff'],
    ['traceparent', 'garbage'],
    ['baggage', 'tenant.id=%E0%A4%A,,,=='],
    ['x-forwarded-host', 'evil.example, acme.strata.test'],
    ['x-forwarded-host', ''],
    ['x-forwarded-for', 'not-an-ip, ::1, 999.1.1.1'],
    ['x-forwarded-proto', 'gopher'],
    ['cookie', 'a=b; %=%; ;;'],
    ['origin', 'null'],
    ['range', 'bytes=5-1'],
    ['range', 'bytes=0-0,1-1,2-2'],
    ['if-none-match', '*'],
    ['if-modified-since', 'not a date'],
    ['accept-encoding', 'gzip;q=2, br;q=-1, x'],
    ['accept-charset', 'utf-1'],
    ['accept-language', 'x'.repeat(300)],
    ['expect', '100-continue'],
    ['content-encoding', 'gzip'],
    ['content-encoding', 'deflate'],
    ['content-encoding', 'br'],
    ['content-encoding', 'compress'],
    ['content-encoding', 'identity'],
    ['content-encoding', 'gzip, gzip'],
    ['x-http-method-override', 'DELETE'],
    ['idempotency-key', ''],
    ['idempotency-key', ' '],
    ['idempotency-key', 'k'.repeat(256)],
    ['idempotency-key', 'tab\there'],
    ['idempotency-key', '\u00e9t\u00e9'],
    ['idempotency-key', '%00'],
    ['if-none-match', '"x", W/"y", *'],
    ['if-none-match', 'x'.repeat(2000)],
    ['range', 'bytes=-0'],
    ['range', 'bytes=0-18446744073709551616'],
    ['range', 'items=0-1'],
    ['range', 'bytes=' + '0-0,'.repeat(500)],
  ),
  oddAccept.map((v): [string, string] => ['accept', v]),
  fc.string({ unit: 'binary', maxLength: 40 }).map((v): [string, string] => ['x-request-id', headerSafe(v)]),
  fc.string({ unit: 'grapheme', maxLength: 40 }).map((v): [string, string] => ['idempotency-key', headerSafe(v)]),
  fc.tuple(fc.constantFrom('x-tenant', 'x-request-id', 'content-type', 'accept', 'idempotency-key', 'range'), fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(
    ([name, a, b]): [string, string[]] => [name, [headerSafe(a), headerSafe(b)]],
  ),
);

/** Slugs that name no tenant, in every form a wire claim can take. */
export const hostileSlug: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', ' ', 'a', 'ab', 'A'.repeat(41), '-abc', 'abc-', 'no-such-tenant', 'Not_A_Slug!', '..', '.', 'x'.repeat(5000), 'acme,globex', '*'),
  fc.constantFrom('%', '%E0%A4%A', '%00', '%2F', '%C0%AF'),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

// ─── multipart ──────────────────────────────────────────────────────────────────────────────────

export interface MultipartCase {
  /** The boundary the Content-Type header announces (undefined: no boundary parameter). */
  announced: string | undefined;
  body: Buffer;
}

interface Part {
  name: string | undefined;
  filename: string | undefined;
  /** `filename*=` instead of `filename=`, text as given. */
  extendedFilename: string | undefined;
  contentType: string | undefined;
  content: Buffer;
  disposition: string;
}

const partText = (p: Part, eol: string) =>
  Buffer.concat([
    Buffer.from(
      [
        `Content-Disposition: ${p.disposition}${p.name === undefined ? '' : `; name="${p.name}"`}` +
          `${p.filename === undefined ? '' : `; filename="${p.filename}"`}${p.extendedFilename === undefined ? '' : `; filename*=${p.extendedFilename}`}`,
        ...(p.contentType === undefined ? [] : [`Content-Type: ${p.contentType}`]),
        '',
        '',
      ].join(eol),
      'utf8',
    ),
    p.content,
  ]);

/**
 * Multipart bodies for an upload route whose file field is `field` and whose size limit is
 * `maxBytes`: as a browser sends them (`valid`), or with odd names, filenames, part headers,
 * sizes, boundaries, line ends and endings mixed in (`hostile`).
 */
export function multipartBody(field: string, maxBytes: number, mode: 'valid' | 'hostile'): fc.Arbitrary<MultipartCase> {
  // Weight of the odd choices: none in valid bodies.
  const odd = mode === 'hostile' ? 1 : 0;
  const filename = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('notes.txt', 'photo.JPG', 'a', 'no-extension', 'Ünïcödé 😀.pdf') },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }).filter((f) => /^[\w .-]+$/.test(f) && f.trim() !== '' && f !== '.' && f !== '..') },
    { weight: 2 * odd, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }) },
    { weight: odd, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    {
      weight: 3 * odd,
      arbitrary: fc.constantFrom(
        '',
        ' ',
        '.',
        '..',
        '../../etc/passwd',
        'a/b.txt',
        'a\\b.txt',
        'C:\\x.txt',
        'nul\u0000.txt',
        'tab\t.txt',
        '\u202egpj.exe',
        'e\u0301.txt',
        '\ud800.txt',
        'x'.repeat(256),
        'é'.repeat(255),
        'quote".txt',
        'semi;colon.txt',
        '%E0%A4%A.txt',
        '\r\nX-Injected: 1',
      ),
    },
  );
  const contentType = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom<string | undefined>('text/plain', 'application/octet-stream', 'image/png', 'application/pdf') },
    {
      weight: 2 * odd,
      arbitrary: fc.constantFrom<string | undefined>(undefined, '', 'garbage', 'text/html; charset=utf-16', 'text/plain; charset="', 'x/'.repeat(200), 'image/svg+xml', 'application/json'),
    },
  );
  const content = fc.oneof(
    { weight: 5, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
    { weight: odd, arbitrary: fc.constantFrom(Buffer.alloc(0), Buffer.alloc(maxBytes, 1), Buffer.alloc(maxBytes + 1, 2), Buffer.from('--B\r\n--B--')) },
  );
  const part: fc.Arbitrary<Part> = fc.record({
    name: fc.oneof({ weight: 8, arbitrary: fc.constant<string | undefined>(field) }, { weight: odd, arbitrary: fc.constantFrom<string | undefined>(undefined, '', 'files', `${field}[]`, 'other') }),
    filename: fc.oneof({ weight: 6, arbitrary: filename.map((f): string | undefined => f) }, { weight: odd, arbitrary: fc.constant(undefined) }),
    extendedFilename: fc.oneof(
      { weight: 8, arbitrary: fc.constant<string | undefined>(undefined) },
      { weight: odd, arbitrary: fc.constantFrom<string | undefined>("UTF-8''%E2%82%AC.txt", "UTF-8''%E0%A4%A", "bogus''x", "UTF-8'en'%00.txt", "''") },
    ),
    contentType,
    content,
    disposition: fc.oneof({ weight: 9, arbitrary: fc.constant('form-data') }, { weight: odd, arbitrary: fc.constantFrom('attachment', 'inline', '', 'form-data;;') }),
  });
  return fc
    .record({
      parts: fc.oneof({ weight: 6, arbitrary: part.map((p) => [p]) }, { weight: odd, arbitrary: fc.array(part, { maxLength: 3 }) }),
      boundary: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('strataFuzzBoundary', '----WebKitFormBoundary7MA4YWxkTrZu0gW') }, { weight: odd, arbitrary: fc.constantFrom('x', '-', 'a'.repeat(70), 'a'.repeat(200), 'with space') }),
      announce: fc.oneof({ weight: 8, arbitrary: fc.constant('same') }, { weight: odd, arbitrary: fc.constantFrom('none', 'other') }),
      eol: fc.oneof({ weight: 8, arbitrary: fc.constant('\r\n') }, { weight: odd, arbitrary: fc.constant('\n') }),
      ending: fc.oneof({ weight: 8, arbitrary: fc.constant('close') }, { weight: odd, arbitrary: fc.constantFrom('none', 'truncated', 'garbage') }),
      preamble: fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: odd, arbitrary: fc.constantFrom('preamble text\r\n', '\r\n\r\n') }),
    })
    .map(({ parts, boundary, announce, eol, ending, preamble }) => {
      const chunks: Buffer[] = [Buffer.from(preamble)];
      for (const p of parts) chunks.push(Buffer.from(`--${boundary}${eol}`), partText(p, eol), Buffer.from(eol));
      if (ending === 'close') chunks.push(Buffer.from(`--${boundary}--${eol}`));
      if (ending === 'garbage') chunks.push(Buffer.from(`--${boundary}-garbage`));
      let body = Buffer.concat(chunks);
      if (ending === 'truncated') body = body.subarray(0, Math.max(0, body.length - 7));
      const announced = announce === 'same' ? boundary : announce === 'other' ? 'someOtherBoundary' : undefined;
      return { announced, body };
    });
}
