import { fork, type ChildProcess, type StdioOptions } from 'node:child_process';

/** An API process a bench forked: it reports `{type: 'ready', port, …}` over IPC once listening. */
export interface ApiChild<R extends { type: 'ready'; port: number }> {
  child: ChildProcess;
  ready: R;
  base: string;
  /** Asks it to shut down (IPC), SIGTERM without IPC, SIGKILL after 10 s; idempotent. */
  stop(): Promise<void>;
}

/**
 * Forks `script` and waits up to 60 s for its ready message. The benches run the API in a child so
 * the load generator in the parent does not share its event loop.
 */
export async function forkApiChild<R extends { type: 'ready'; port: number }>(
  script: string,
  env: NodeJS.ProcessEnv,
  stdio: StdioOptions,
  what = 'the API child',
): Promise<ApiChild<R>> {
  const child = fork(script, [], { env, stdio });
  const ready = await readyMessageOf<R>(child, what);
  let stopping: Promise<void> | undefined;
  return {
    child,
    ready,
    base: `http://127.0.0.1:${ready.port}`,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        if (child.connected) child.send({ type: 'shutdown' });
        else child.kill('SIGTERM');
      });
      return stopping;
    },
  };
}

/** The child's first IPC message, which must be `{type: 'ready', …}`; it is killed if none comes within 60 s. */
export function readyMessageOf<R extends { type: 'ready' }>(child: ChildProcess, what: string): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not report ready within 60 s`));
    }, 60_000);
    child.once('message', (msg: R) => {
      clearTimeout(timer);
      if (msg?.type === 'ready') resolve(msg);
      else reject(new Error(`unexpected message from ${what}: ${JSON.stringify(msg)}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited before it was ready (code ${code}, signal ${signal})`));
    });
  });
}

export interface CallOptions {
  token?: string;
  tenant?: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Expected status; 201 for POST, 200 otherwise. */
  expect?: number;
  timeoutMs?: number;
}

/** One JSON call to the API during a bench's setup (not measured); any other status than expected throws. */
export async function call<T = any>(base: string, method: string, path: string, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.tenant) headers['x-tenant'] = opts.tenant;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  const expect = opts.expect ?? (method === 'POST' ? 201 : 200);
  if (res.status !== expect) throw new Error(`${method} ${path} answered ${res.status} (expected ${expect}): ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}
