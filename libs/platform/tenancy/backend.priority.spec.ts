import { isBackendTitleOf, lowerBackendPriority } from './backend.priority';
import type { Client } from 'pg';

describe('isBackendTitleOf', () => {
  const conn = { user: 'strata_owner', database: 'strata', clientPort: 5432 };

  it('knows the backend of this connection by its title, with or without a cluster name, as /proc gives it', () => {
    expect(isBackendTitleOf('postgres: strata_owner strata 127.0.0.1(5432) idle\0\0\0', conn)).toBe(true);
    expect(isBackendTitleOf('postgres: 15/main: strata_owner strata 127.0.0.1(5432) COPY', conn)).toBe(true);
    expect(isBackendTitleOf('postgres: strata_owner strata ::1(5432) idle in transaction', conn)).toBe(true);
  });

  it("refuses another connection's backend: another client port (also one that ends in the same digits), user or database", () => {
    expect(isBackendTitleOf('postgres: strata_owner strata 127.0.0.1(15432) idle', conn)).toBe(false);
    expect(isBackendTitleOf('postgres: strata_owner strata 127.0.0.1(54320) idle', conn)).toBe(false);
    expect(isBackendTitleOf('postgres: other strata 127.0.0.1(5432) idle', conn)).toBe(false);
    expect(isBackendTitleOf('postgres: strata_owner strata_x 127.0.0.1(5432) idle', conn)).toBe(false);
  });

  it('refuses a process that is not a PostgreSQL backend (a process id of another host, in a container)', () => {
    expect(isBackendTitleOf('/usr/bin/node server.js strata_owner strata 127.0.0.1(5432)', conn)).toBe(false);
    expect(isBackendTitleOf('postgres: 15/main: checkpointer', conn)).toBe(false);
  });
});

describe('lowerBackendPriority', () => {
  it('refuses a niceness outside 1 to 19 before it touches anything', async () => {
    const c = { query: jest.fn() } as unknown as Client;
    await expect(lowerBackendPriority(c, 0)).rejects.toThrow(/1 to 19/);
    await expect(lowerBackendPriority(c, 20)).rejects.toThrow(/1 to 19/);
    expect(c.query).not.toHaveBeenCalled();
  });

  it('changes nothing on a connection through a pooler: the backend sees another client port than this socket has', async () => {
    const query = jest.fn().mockResolvedValue({ rows: [{ pid: process.pid, port: 6001, usr: 'u', db: 'd' }] });
    const c = { connection: { stream: { localPort: 50_000 } }, query } as unknown as Client;
    expect(await lowerBackendPriority(c, 10)).toBeNull();
  });

  it('changes nothing on a Unix socket, where no port tells a pooled backend from ours', async () => {
    const c = { connection: { stream: {} }, query: jest.fn() } as unknown as Client;
    expect(await lowerBackendPriority(c, 10)).toBeNull();
    expect(c.query).not.toHaveBeenCalled();
  });
});
