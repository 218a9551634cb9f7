import { fileEtag, planDownload, type DownloadConditions } from './file-download.conditions';

const FILE = { id: '3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60', size: 1000 };
const ETAG = fileEtag(FILE);
const plan = (c: DownloadConditions) => planDownload(c, { etag: ETAG, size: FILE.size });

describe('download conditions', () => {
  it('tags a file by id and size, as a strong entity tag', () => {
    expect(ETAG).toBe(`"${FILE.id}-1000"`);
  });

  it('sends the whole file without conditions', () => {
    expect(plan({})).toEqual({ kind: 'full' });
  });

  it.each([[ETAG], [`W/${ETAG}`], [`"a", ${ETAG}`], ['*']])('answers If-None-Match %s with not-modified, a Range notwithstanding', (ifNoneMatch) => {
    expect(plan({ ifNoneMatch, range: 'bytes=0-1' })).toEqual({ kind: 'not-modified' });
  });

  it('sends the file to an If-None-Match naming another version', () => {
    expect(plan({ ifNoneMatch: '"other"' })).toEqual({ kind: 'full' });
  });

  it.each<[string, { start: number; end: number }]>([
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=900-', { start: 900, end: 999 }],
    ['bytes=-100', { start: 900, end: 999 }],
    ['bytes=990-5000', { start: 990, end: 999 }],
    ['bytes=0-9,5-20', { start: 0, end: 20 }],
  ])('reads %s as one range', (range, expected) => {
    expect(plan({ range })).toEqual({ kind: 'partial', range: expected });
  });

  it("answers a range that starts past the end as unsatisfiable (and a backwards one, as Express's send does)", () => {
    expect(plan({ range: 'bytes=1000-' })).toEqual({ kind: 'unsatisfiable' });
    expect(plan({ range: 'bytes=9-1' })).toEqual({ kind: 'unsatisfiable' });
    expect(planDownload({ range: 'bytes=0-' }, { etag: ETAG, size: 0 })).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([['bytes=0-9,50-59'], ['items=0-9'], ['bytes=abc'], ['']])('sends the whole file for %p (several ranges, another unit, malformed)', (range) => {
    expect(plan({ range })).toEqual({ kind: 'full' });
  });

  it('honours a Range only under an If-Range that names this version', () => {
    expect(plan({ range: 'bytes=0-9', ifRange: ETAG })).toEqual({ kind: 'partial', range: { start: 0, end: 9 } });
    expect(plan({ range: 'bytes=0-9', ifRange: '"older"' })).toEqual({ kind: 'full' });
    expect(plan({ range: 'bytes=0-9', ifRange: `W/${ETAG}` })).toEqual({ kind: 'full' });
    expect(plan({ range: 'bytes=0-9', ifRange: 'Tue, 01 Jan 2030 00:00:00 GMT' })).toEqual({ kind: 'full' });
  });
});
