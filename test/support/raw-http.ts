import { Agent, request, type IncomingHttpHeaders } from 'node:http';

/**
 * A bare HTTP/1.1 client for fuzzing: the path, every header (repeated ones included) and the body
 * bytes go out exactly as given, which supertest/superagent would normalise, and a request that
 * gets no answer within a bound is reported as a hang rather than waited for.
 */
export interface RawRequest {
  method: string;
  /** Request target as sent: already percent-encoded (or deliberately not). */
  path: string;
  headers: Array<[string, string | string[]]>;
  body?: Buffer;
  /** Send on a connection of its own, closed afterwards (for framing that may leave bytes behind). */
  fresh?: boolean;
}

export type RawResult =
  | { kind: 'response'; status: number; headers: IncomingHttpHeaders; body: Buffer; size: number; ms: number }
  | { kind: 'timeout'; ms: number }
  | { kind: 'error'; error: string; ms: number };

/** Bodies beyond this are not kept (a download route may stream more); `size` still counts every byte. */
const KEEP_BYTES = 1024 * 1024;

export class RawHttpClient {
  // Keep-alive like a real client; a connection the server closed is simply replaced.
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });

  constructor(private readonly port: number) {}

  send(req: RawRequest, timeoutMs: number): Promise<RawResult> {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    return new Promise<RawResult>((resolve) => {
      let settled = false;
      const settle = (r: RawResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of req.headers) {
        const prev = headers[name.toLowerCase()];
        headers[name.toLowerCase()] = prev === undefined ? value : ([] as string[]).concat(prev, value);
      }
      if (req.body && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = String(req.body.length);
      let out: ReturnType<typeof request>;
      try {
        out = request({ host: '127.0.0.1', port: this.port, method: req.method, path: req.path, headers, agent: req.fresh ? false : this.agent });
      } catch (err) {
        // Node refused to put this on the wire (a character HTTP forbids): the generator's fault.
        throw new Error(`unsendable request ${req.method} ${req.path}: ${(err as Error).message}`);
      }
      const timer = setTimeout(() => {
        settle({ kind: 'timeout', ms: ms() });
        out.destroy();
      }, timeoutMs);
      out.on('response', (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (c: Buffer) => {
          if (kept < KEEP_BYTES) chunks.push(c);
          kept += c.length;
        });
        res.on('end', () => settle({ kind: 'response', status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), size: kept, ms: ms() }));
        res.on('error', (err) => settle({ kind: 'error', error: `response aborted: ${err.message}`, ms: ms() }));
      });
      // An error after the answer (the server closed while we were still sending a refused body) is not a failure.
      out.on('error', (err) => settle({ kind: 'error', error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim(), ms: ms() }));
      out.end(req.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
