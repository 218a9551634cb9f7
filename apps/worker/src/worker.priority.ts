import { setPriority, getPriority } from 'node:os';

/** The worker's default niceness (WORKER_NICE): below the API on a shared host, well above idle. */
export const DEFAULT_WORKER_NICE = 10;

/**
 * Lowers a process's CPU priority (Unix niceness, 0 to 19). Where the worker shares cores with the
 * API (`npm start` and `npm run start:worker` on one host, a small VM, a pod beside another), its
 * jobs then take the CPU the API's requests leave: bench:neighbours measured a quiet tenant's p99
 * at 8× alone while a neighbour's 10,000 jobs ran on the same 2 cores, 2× with the worker niced.
 * In a container of its own the worker is alone in its cgroup, and this changes nothing.
 * Raising priority (a negative value) needs privileges and is refused here.
 * Returns the niceness in force, or an error message when the system refused.
 */
export function lowerCpuPriority(nice: number, pid = 0): { nice: number } | { error: string } {
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) throw new Error(`WORKER_NICE must be an integer from 0 to 19, got ${nice}`);
  try {
    if (getPriority(pid) < nice) setPriority(pid, nice);
    return { nice: getPriority(pid) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** WORKER_NICE from the environment: unset → the default; empty or `off` → leave the priority alone. */
export function workerNiceFrom(env: NodeJS.ProcessEnv): number | null {
  const raw = env.WORKER_NICE?.trim();
  if (raw === undefined) return DEFAULT_WORKER_NICE;
  if (raw === '' || raw === 'off') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 19) throw new Error(`WORKER_NICE must be an integer from 0 to 19 or off, got ${JSON.stringify(raw)}`);
  return n;
}
