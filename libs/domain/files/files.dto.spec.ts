import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { ApiException } from '#strata/common';
import { ListFilesQuery, validFileName } from './files.dto';

function refusal(name: unknown): string | undefined {
  try {
    validFileName(name);
  } catch (err) {
    if (err instanceof ApiException) return `${err.getStatus()} ${err.code}`;
    throw err;
  }
  return undefined;
}

describe('file names', () => {
  it.each(['report.pdf', 'Quartalsbericht – März.xlsx', '写真 (1).jpg', 'no extension', '..hidden but named', 'x'.repeat(255), '😀'.repeat(255)])(
    'accepts %p',
    (name) => {
      expect(validFileName(name)).toBe(name);
    },
  );

  it('stores names in NFC, so one name has one spelling', () => {
    expect(validFileName('Ma\u0308rz.pdf')).toBe('M\u00e4rz.pdf');
  });

  it.each<[unknown, string]>([
    ['', 'empty'],
    [undefined, 'missing'],
    ['x'.repeat(256), 'too long'],
    ['a\u0000b.txt', 'NUL'],
    ['a\r\nb.txt', 'CR/LF'],
    ['a\u0085b.txt', 'a C1 control'],
    ['invoice\u202Efdp.exe', 'a bidi override'],
    ['../etc/passwd', 'a path'],
    ['..\\win.ini', 'a windows path'],
    ['dir/file.txt', 'a slash'],
    ['.', 'a dot'],
    ['..', 'two dots'],
    ['   ', 'blank'],
    ['bad\ud800.txt', 'a lone surrogate'],
  ])('refuses %p (%s) with 400 invalid_filename', (name) => {
    expect(refusal(name)).toBe('400 invalid_filename');
  });
});

describe('file list query', () => {
  it('takes a limit and a cursor and nothing else', async () => {
    const errors = async (plain: object) =>
      (await validate(plainToInstance(ListFilesQuery, plain), { whitelist: true, forbidNonWhitelisted: true })).map((e) => e.property);
    expect(await errors({ limit: '5', cursor: 'abc' })).toEqual([]);
    expect(await errors({ limit: '101' })).toEqual(['limit']);
    expect(await errors({ name: 'x' })).toEqual(['name']);
  });
});
