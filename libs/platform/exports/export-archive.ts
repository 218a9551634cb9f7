import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { MEMBERSHIP_ROLES } from '#strata/control-plane';
import { MANIFEST_FORMAT, MANIFEST_PATH, MEMBERS_PATH, type ExportedMember, type ExportManifest } from './tenant-export.types';

/** Bytes through, sha256 and length on the side. */
export class Digest extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}

/** One staged file of the archive: written once, then packed with its size known (a tar header needs it first). */
interface Staged {
  path: string;
  file: string;
  bytes: number;
  sha256: string;
}

/** A JSON Lines file being written: lines in, sha256 and counts kept as it goes. */
export class JsonLinesWriter {
  private readonly hash = createHash('sha256');
  private readonly out: WriteStream;
  rows = 0;
  bytes = 0;

  constructor(readonly file: string) {
    this.out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
  }

  /** One row as the text of a JSON object (no newline inside: JSON text escapes it). */
  async write(line: string): Promise<void> {
    const chunk = Buffer.from(`${line}\n`, 'utf8');
    this.hash.update(chunk);
    this.rows++;
    this.bytes += chunk.length;
    if (!this.out.write(chunk)) await new Promise<void>((r) => this.out.once('drain', r));
  }

  async close(): Promise<{ rows: number; bytes: number; sha256: string }> {
    this.out.end();
    await finished(this.out);
    return { rows: this.rows, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

/**
 * Builds an export archive on local disk: each table's JSON Lines and each file are staged in a
 * temporary directory first (a tar entry's header carries its size, and the manifest — the first
 * entry, so a reader knows what to expect before anything else — carries every checksum), then
 * packed with tar-stream through gzip into one .tar.gz, hashed on the way.
 */
export class ArchiveBuilder {
  private readonly staged: Staged[] = [];
  private dir?: string;
  private seq = 0;

  private async workDir(): Promise<string> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'strata-export-'));
    return this.dir;
  }

  async table(): Promise<JsonLinesWriter> {
    return new JsonLinesWriter(join(await this.workDir(), `t${this.seq++}`));
  }

  /** Records a finished JSON Lines file under `path` in the archive. */
  addStaged(path: string, file: string, bytes: number, sha256: string): void {
    this.staged.push({ path, file, bytes, sha256 });
  }

  /** Stages a stream (a stored file) under `path`; answers its size and sha256. */
  async addStream(path: string, body: Readable): Promise<{ bytes: number; sha256: string }> {
    const file = join(await this.workDir(), `f${this.seq++}`);
    const digest = new Digest();
    await pipeline(body, digest, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    const entry = { path, file, bytes: digest.bytes, sha256: digest.hex() };
    this.staged.push(entry);
    return entry;
  }

  /** Packs manifest + staged entries into `<workdir>/archive.tar.gz`; answers its path, size and sha256. */
  async pack(manifest: ExportManifest): Promise<{ file: string; bytes: number; sha256: string }> {
    const out = join(await this.workDir(), 'archive.tar.gz');
    const tar = pack();
    const digest = new Digest();
    const written = pipeline(tar, createGzip(), digest, createWriteStream(out, { flags: 'wx', mode: 0o600 }));
    const mtime = new Date(manifest.createdAt);
    const body = Buffer.from(JSON.stringify(manifest, null, 2), 'utf8');
    const entry = (path: string, size: number) => tar.entry({ name: path, size, mode: 0o644, mtime, type: 'file' });
    try {
      await new Promise<void>((done, fail) => tar.entry({ name: MANIFEST_PATH, size: body.length, mode: 0o644, mtime, type: 'file' }, body, (err) => (err ? fail(err) : done())));
      for (const s of this.staged) await pipeline(createReadStream(s.file), entry(s.path, s.bytes));
      tar.finalize();
    } catch (err) {
      tar.destroy(err as Error);
    }
    await written;
    return { file: out, bytes: (await stat(out)).size, sha256: digest.hex() };
  }

  async dispose(): Promise<void> {
    if (this.dir) await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Why an archive is refused: the message names what did not match. */
export class ArchiveInvalidError extends Error {}

/** What a reader does with one entry the manifest names; it must consume `body`. */
export type EntryHandler = (path: string, body: Readable) => Promise<void>;

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/**
 * Reads an archive as a stream (gunzip → tar-stream): the manifest first, then every entry in
 * order, each hashed while `handle` consumes it. Refuses (ArchiveInvalidError) an archive whose
 * first entry is not a manifest of this format, an entry the manifest does not name or names twice,
 * a size or sha256 that differs, a table whose line count differs, and a missing entry. `handle`
 * runs only for entries the manifest names, so a tampered entry may already have been handed on:
 * callers that write (the restorer) keep their writes undoable until this resolves.
 */
export async function readArchive(archive: Readable, handle: EntryHandler = drain): Promise<ExportManifest> {
  const tar = extract();
  const feeding = pipeline(archive, createGunzip(), tar).catch((err: unknown) => {
    tar.destroy(err as Error);
    throw new ArchiveInvalidError(`not a readable .tar.gz: ${(err as Error).message}`);
  });
  let manifest: ExportManifest | undefined;
  const expected = new Map<string, { bytes: number; sha256: string; rows?: number }>();
  const seen = new Set<string>();
  try {
    for await (const entry of tar) {
      const name = entry.header.name;
      if (!manifest) {
        if (name !== MANIFEST_PATH) throw new ArchiveInvalidError(`the first entry must be ${MANIFEST_PATH}, found ${JSON.stringify(name)}`);
        manifest = parseManifest(await readAll(entry as AsyncIterable<Buffer>, MAX_MANIFEST_BYTES));
        for (const t of manifest.tables) expected.set(t.path, { bytes: t.bytes, sha256: t.sha256, rows: t.rows });
        for (const f of manifest.files) expected.set(f.path, { bytes: f.bytes, sha256: f.sha256 });
        if (manifest.members) expected.set(manifest.members.path, { bytes: manifest.members.bytes, sha256: manifest.members.sha256, rows: manifest.members.rows });
        if (expected.size !== manifest.tables.length + manifest.files.length + (manifest.members ? 1 : 0)) throw new ArchiveInvalidError('the manifest names one path twice');
        continue;
      }
      const want = expected.get(name);
      if (!want || seen.has(name)) {
        entry.resume();
        throw new ArchiveInvalidError(`entry ${JSON.stringify(name)} is not in the manifest${want ? ' (or comes twice)' : ''}`);
      }
      seen.add(name);
      const digest = new Digest();
      const lines = new LineCounter();
      const body = want.rows === undefined ? entry.pipe(digest) : entry.pipe(lines).pipe(digest);
      // pipe() forwards no errors: a broken entry (bad gzip data, a short tar) must fail the handler's stream too.
      let broken: Error | undefined;
      entry.on('error', (err: Error) => digest.destroy((broken = err)));
      try {
        await handle(name, body);
      } catch (err) {
        if (broken) throw new ArchiveInvalidError(`unreadable entry ${name}: ${broken.message}`);
        // The handler's own failure (a database or storage error) is not the archive's fault.
        throw new HandlerFailed(err);
      }
      if (broken) throw new ArchiveInvalidError(`unreadable entry ${name}: ${broken.message}`);
      const sha256 = digest.hex();
      if (digest.bytes !== want.bytes || sha256 !== want.sha256) {
        throw new ArchiveInvalidError(`entry ${name}: ${digest.bytes} bytes with sha256 ${sha256}, the manifest says ${want.bytes} bytes with ${want.sha256}`);
      }
      if (want.rows !== undefined && lines.lines !== want.rows) throw new ArchiveInvalidError(`entry ${name}: ${lines.lines} rows, the manifest says ${want.rows}`);
    }
    await feeding;
  } catch (err) {
    archive.destroy();
    await feeding.catch(() => undefined);
    if (err instanceof HandlerFailed) throw err.cause;
    if (err instanceof ArchiveInvalidError) throw err;
    throw new ArchiveInvalidError(`unreadable archive: ${(err as Error).message}`);
  }
  if (!manifest) throw new ArchiveInvalidError('the archive is empty');
  const missing = [...expected.keys()].filter((p) => !seen.has(p));
  if (missing.length) throw new ArchiveInvalidError(`entries named by the manifest are missing: ${missing.slice(0, 5).join(', ')}`);
  return manifest;
}

class HandlerFailed extends Error {
  constructor(readonly cause: unknown) {
    super('entry handler failed');
  }
}

/** An entry handler that only reads the entry through (so it is hashed and checked). */
export async function drain(_path: string, body: Readable): Promise<void> {
  for await (const _chunk of body) void _chunk;
}

async function readAll(body: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) throw new ArchiveInvalidError(`${MANIFEST_PATH} is larger than ${max} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

class LineCounter extends Transform {
  lines = 0;
  _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    done(null, chunk);
  }
}

const SHA256 = /^[0-9a-f]{64}$/;
// The storage layer's key rule (libs/platform/storage/object-key.validator.ts), checked here too so a
// forged manifest is refused while verifying, before a restore writes anything.
const OBJECT_KEY = /^[A-Za-z0-9!\-_.*'()/]{1,400}$/;
const validKey = (key: unknown): key is string => typeof key === 'string' && OBJECT_KEY.test(key) && key.split('/').every((seg) => seg !== '' && !seg.startsWith('.'));
const TABLE = /^[a-z_][a-z0-9_]{0,62}$/;

/** The manifest's shape, checked field by field: everything a restore later trusts comes from here. */
function parseManifest(raw: Buffer): ExportManifest {
  let m: ExportManifest;
  try {
    m = JSON.parse(raw.toString('utf8')) as ExportManifest;
  } catch {
    throw new ArchiveInvalidError(`${MANIFEST_PATH} is not JSON`);
  }
  const bad = (what: string) => new ArchiveInvalidError(`${MANIFEST_PATH}: ${what}`);
  if (!m || m.format !== MANIFEST_FORMAT || m.version !== 1) throw bad(`not a ${MANIFEST_FORMAT} manifest of version 1`);
  if (typeof m.schemaVersion !== 'string' || !m.tenant || typeof m.tenant.id !== 'string') throw bad('schemaVersion and tenant are required');
  if (!Array.isArray(m.tables) || !Array.isArray(m.files) || !Array.isArray(m.sequences)) throw bad('tables, files and sequences must be lists');
  for (const t of m.tables) {
    if (!TABLE.test(t?.name) || t.path !== `tables/${t.name}.jsonl` || !Number.isSafeInteger(t.rows) || !Number.isSafeInteger(t.bytes) || !SHA256.test(t.sha256)) {
      throw bad(`table entry ${JSON.stringify(t).slice(0, 200)} is malformed`);
    }
  }
  for (const f of m.files) {
    if (!validKey(f?.key) || f.path !== `files/${f.key}` || !Number.isSafeInteger(f.bytes) || !SHA256.test(f.sha256)) {
      throw bad(`file entry ${JSON.stringify(f).slice(0, 200)} is malformed`);
    }
  }
  for (const s of m.sequences) {
    if (!TABLE.test(s?.name) || !/^-?\d{1,19}$/.test(s.last)) throw bad(`sequence entry ${JSON.stringify(s).slice(0, 200)} is malformed`);
  }
  if (m.members !== undefined) {
    const e = m.members;
    if (!e || e.path !== MEMBERS_PATH || !Number.isSafeInteger(e.rows) || !Number.isSafeInteger(e.bytes) || !SHA256.test(e.sha256)) {
      throw bad(`the members entry ${JSON.stringify(e).slice(0, 200)} is malformed`);
    }
  }
  return m;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One line of members.jsonl, checked field by field (a restore grants what it says). */
export function parseMemberLine(line: string): ExportedMember {
  let m: ExportedMember;
  try {
    m = JSON.parse(line) as ExportedMember;
  } catch {
    throw new ArchiveInvalidError(`${MEMBERS_PATH}: a line is not JSON`);
  }
  if (!m || typeof m.userId !== 'string' || !UUID.test(m.userId) || typeof m.email !== 'string' || m.email !== m.email.toLowerCase() || m.email.length > 254 || !m.email.includes('@') || !MEMBERSHIP_ROLES.includes(m.role)) {
    throw new ArchiveInvalidError(`${MEMBERS_PATH}: member ${line.slice(0, 200)} is malformed`);
  }
  return { userId: m.userId, email: m.email, role: m.role };
}
