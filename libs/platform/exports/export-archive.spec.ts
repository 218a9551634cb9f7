import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ArchiveBuilder, ArchiveInvalidError, parseMemberLine, readArchive } from './export-archive';
import { MANIFEST_FORMAT, type ExportManifest } from './tenant-export.types';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** An archive of one table (two rows) and one file, built by the lib's own builder. */
async function anArchive(): Promise<{ bytes: Buffer; manifest: ExportManifest }> {
  const builder = new ArchiveBuilder();
  try {
    const table = await builder.table();
    await table.write('{"id":"a","name":"first"}');
    await table.write('{"id":"b","name":"second"}');
    const t = await table.close();
    builder.addStaged('tables/projects.jsonl', table.file, t.bytes, t.sha256);
    const file = await builder.addStream('files/files/x', Readable.from([Buffer.from('hello')]));
    const manifest: ExportManifest = {
      format: MANIFEST_FORMAT,
      version: 1,
      exportId: 'e',
      createdAt: new Date(0).toISOString(),
      tenant: { id: 't', slug: 's', name: 'n', plan: 'p', tier: 'pool' },
      schemaVersion: '0008',
      tables: [{ name: 'projects', path: 'tables/projects.jsonl', rows: t.rows, bytes: t.bytes, sha256: t.sha256 }],
      sequences: [],
      files: [{ key: 'files/x', path: 'files/files/x', bytes: file.bytes, sha256: file.sha256 }],
    };
    const packed = await builder.pack(manifest);
    const bytes = await readFile(packed.file);
    expect(sha(bytes)).toBe(packed.sha256);
    return { bytes, manifest };
  } finally {
    await builder.dispose();
  }
}

describe('export archives', () => {
  it('reads back what the builder packed: the manifest first, every entry with its checksum', async () => {
    const { bytes, manifest } = await anArchive();
    const seen: Record<string, string> = {};
    const read = await readArchive(Readable.from([bytes]), async (path, body) => {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      seen[path] = Buffer.concat(chunks).toString('utf8');
    });
    expect(read).toEqual(manifest);
    expect(seen).toEqual({ 'tables/projects.jsonl': '{"id":"a","name":"first"}\n{"id":"b","name":"second"}\n', 'files/files/x': 'hello' });
    expect(manifest.tables[0].sha256).toBe(sha(seen['tables/projects.jsonl']));
  });

  it.each([0, 10, 100, -30, -20, -5])('refuses an archive with a byte flipped at offset %i as invalid, never with a raw zlib or tar error', async (at) => {
    const { bytes } = await anArchive();
    const flipped = Buffer.from(bytes);
    flipped[(at + flipped.length) % flipped.length] ^= 0xff;
    await expect(readArchive(Readable.from([flipped]))).rejects.toBeInstanceOf(ArchiveInvalidError);
  });

  it.each(['../other/x', 'files/../../x', '/abs', 'a//b', 'files/.hidden', 'sp ace'])('refuses a manifest naming the file key %j', async (key) => {
    const { manifest } = await anArchive();
    const forged = { ...manifest, files: [{ ...manifest.files[0], key, path: `files/${key}` }] };
    const { pack } = await import('tar-stream');
    const { createGzip } = await import('node:zlib');
    const tar = pack();
    const chunks: Buffer[] = [];
    const gz = tar.pipe(createGzip());
    gz.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((r) => gz.on('end', r));
    tar.entry({ name: 'manifest.json' }, Buffer.from(JSON.stringify(forged)));
    tar.finalize();
    await ended;
    await expect(readArchive(Readable.from([Buffer.concat(chunks)]))).rejects.toThrow(/file entry .* is malformed/);
  });

  it('refuses a truncated archive and bytes that are no archive at all', async () => {
    const { bytes } = await anArchive();
    await expect(readArchive(Readable.from([bytes.subarray(0, bytes.length / 2)]))).rejects.toBeInstanceOf(ArchiveInvalidError);
    await expect(readArchive(Readable.from([Buffer.from('{"not":"an archive"}')]))).rejects.toBeInstanceOf(ArchiveInvalidError);
  });
  it('reads a member line and refuses one with a role, id or email a restore must not grant', () => {
    const ok = { userId: '0b5e8f8e-3c1d-4c2a-9d6f-1a2b3c4d5e6f', email: 'ana@example.test', role: 'admin' };
    expect(parseMemberLine(JSON.stringify({ ...ok, extra: 'ignored' }))).toEqual(ok);
    for (const bad of [{ ...ok, role: 'root' }, { ...ok, userId: 'x' }, { ...ok, email: 'Ana@example.test' }, { ...ok, email: 'nobody' }]) {
      expect(() => parseMemberLine(JSON.stringify(bad))).toThrow(ArchiveInvalidError);
    }
    expect(() => parseMemberLine('{not json')).toThrow(ArchiveInvalidError);
  });
});
