import { Connection } from 'pg';
import type { ServerResponse } from 'node:http';

/** How a unit learns that whoever waits for its answer has gone (an HTTP client that disconnected). */
export interface UnitCancellation {
  readonly cancelled: boolean;
  /** Calls `listener` once if it gets cancelled; returns the unsubscribe. */
  onCancel(listener: () => void): () => void;
}

/**
 * The cancellation of an HTTP request: its client closed the connection before the answer was
 * written. Built on the response's own 'close' event rather than an AbortController per request,
 * because nothing is allocated until a unit of work asks.
 */
export function responseCancellation(res: ServerResponse): UnitCancellation {
  return {
    get cancelled() {
      return !res.writableFinished && (res.destroyed || res.socket?.destroyed === true);
    },
    onCancel(listener) {
      const onClose = () => {
        if (!res.writableFinished) listener();
      };
      res.once('close', onClose);
      return () => void res.off('close', onClose);
    },
  };
}

/** The parts of a connected pg Client a cancel request needs (public fields of pg's Client). */
interface CancellableBackend {
  host: string;
  port: number;
  processID: number | null;
  secretKey: number | null;
}

const CANCEL_TIMEOUT_MS = 2000;

/**
 * Asks the server to cancel whatever `client`'s backend is running, over a connection of its own
 * (PostgreSQL's CancelRequest: no login, works through PgBouncer). Hand-written on pg's Connection
 * because pg's Client#cancel() is undocumented and cancels only a query that is still pg's
 * "active" one, which is not true of pipelined statements. The caller must not hand the client
 * back to the pool afterwards: the request may land on whatever the backend runs next.
 */
export function cancelBackend(client: CancellableBackend): Promise<void> {
  const { processID, secretKey } = client;
  if (processID === null || secretKey === null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    // pg's typings leave out the two methods this needs.
    const con = new Connection() as Connection & { connect(portOrPath: number | string, host?: string): void; cancel(pid: number, key: number): void };
    const done = () => {
      clearTimeout(timer);
      con.end();
      resolve();
    };
    const timer = setTimeout(done, CANCEL_TIMEOUT_MS);
    con.on('connect', () => con.cancel(processID, secretKey));
    // The server closes the cancel connection without a word once it has read the request.
    con.on('end', done);
    con.on('error', done);
    if (client.host?.startsWith('/')) con.connect(`${client.host}/.s.PGSQL.${client.port}`);
    else con.connect(client.port, client.host);
  });
}
