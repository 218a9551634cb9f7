import { readFile, writeFile } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';
import type { Client } from 'pg';

/** What `lowerBackendPriority` did to the backend process of one connection. */
export interface LoweredBackend {
  pid: number;
  /** The backend's niceness afterwards. */
  nice: number;
  /** Whether its autogroup (the scheduling group of its session) got the niceness too. */
  autogroup: boolean;
}

/**
 * Lowers the CPU priority of the PostgreSQL backend process serving `c` — for bulk work (a move's
 * copy and checksums) that should take only the CPU the tenants' own queries leave — where this
 * process can: the connection goes straight to a server on this host (no pooler between: the
 * backend's client port is this socket's port) and the OS lets it (root, or the server's own user).
 * Anywhere else (a managed or remote server, a refusal) it changes nothing and answers null; the
 * work then runs at the backend's usual priority, as it always did.
 *
 * Written by hand: PostgreSQL has no per-session CPU priority, and the one extension that sets it
 * (`prioritize`) calls only setpriority(). Where the kernel groups tasks by session (autogroup: on in
 * most distributions outside systemd's cgroups, and on bench:move's machine), sched(7) says a nice
 * value counts only against threads of the same group — and every backend calls setsid(), so it is
 * a group of its own, weighed like the whole API process. Hence the backend's autogroup gets the
 * niceness too. A CPU-bound statement beside a probe of small transactions on 2 cores (2026-12-06):
 * the probe's p99 1.8 → 9.2 / 7.0 / 3.7 ms at the usual priority, 2.0 / 1.7 / 3.0 ms niced.
 */
export async function lowerBackendPriority(c: Client, nice: number): Promise<LoweredBackend | null> {
  if (!Number.isInteger(nice) || nice < 1 || nice > 19) throw new Error(`a backend's niceness must be an integer from 1 to 19, got ${nice}`);
  if (process.platform !== 'linux') return null;
  const localPort = (c as unknown as { connection?: { stream?: { localPort?: number } } }).connection?.stream?.localPort;
  if (!localPort) return null; // a Unix socket: nothing tells a pooler's connection from ours
  const r = await c.query<{ pid: number; port: number | null; usr: string; db: string }>(
    'SELECT pg_backend_pid() AS pid, inet_client_port() AS port, current_user AS usr, current_database() AS db',
  );
  const { pid, port, usr, db } = r.rows[0];
  if (port !== localPort) return null; // a pooler or proxy is between: its backend serves others too
  const title = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (title === null || !isBackendTitleOf(title, { user: usr, database: db, clientPort: port })) return null; // not on this host
  try {
    if (getPriority(pid) < nice) setPriority(pid, nice);
  } catch {
    return null; // not ours to change
  }
  return { pid, nice: getPriority(pid), autogroup: await lowerAutogroup(pid, nice) };
}

/**
 * Whether `cmdline` (a /proc/<pid>/cmdline) is the process title PostgreSQL gives the backend of a
 * TCP connection: `postgres: [cluster: ]user database host(port) …`. The client port tells this
 * connection's backend from every other on the host, including another server's in a container
 * whose process ids are not ours.
 */
export function isBackendTitleOf(cmdline: string, conn: { user: string; database: string; clientPort: number }): boolean {
  const title = cmdline.replace(/\0/g, ' ');
  if (!title.startsWith('postgres: ')) return false;
  return title.includes(` ${conn.user} ${conn.database} `) && new RegExp(`\\S+\\(${conn.clientPort}\\)(\\s|$)`).test(title);
}

/**
 * Sets the niceness of the backend's autogroup when the kernel groups by session and the backend
 * leads its own session (PostgreSQL's backends do), so nothing else is in the group.
 */
async function lowerAutogroup(pid: number, nice: number): Promise<boolean> {
  const enabled = await readFile('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').catch(() => '0');
  if (enabled.trim() !== '1') return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command (in parentheses, which may hold spaces): state ppid pgrp session …
  const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
  if (session !== pid) return false;
  try {
    await writeFile(`/proc/${pid}/autogroup`, String(nice));
    return true;
  } catch {
    return false;
  }
}
