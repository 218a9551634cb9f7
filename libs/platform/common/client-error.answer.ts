import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { CommonErrorCode } from './common.errors';

type Answer = [status: number, reason: string, code: string, message: string];

// The cases Node's own default handler tells apart (lib/_http_server.js socketOnError).
const ANSWERS: Record<string, Answer> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', CommonErrorCode.headersTooLarge, 'the request headers are too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Payload Too Large', CommonErrorCode.payloadTooLarge, 'the chunk extensions are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', CommonErrorCode.requestTimeout, 'the request did not arrive in time'],
};
const MALFORMED: Answer = [
  400,
  'Bad Request',
  CommonErrorCode.malformedRequest,
  'the request is not valid HTTP/1.1 (percent-encode bytes outside ASCII in the URL; no control characters in headers)',
];

/**
 * A request Node's HTTP parser refuses (a raw non-ASCII byte in the URL, a header over the size
 * limit, a broken chunked body) never reaches Express, and Node answers it with a bare status line
 * and no body. This answers it in the one error shape instead, under the same rule as Node's default:
 * only when no response has started on that connection, which is then closed.
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex & { _httpMessage?: { headersSent?: boolean } }) => {
    // _httpMessage is the in-flight response: Node's own handler checks it the same way.
    if (socket.writable && !socket._httpMessage?.headersSent) {
      const [status, reason, code, message] = ANSWERS[err.code ?? ''] ?? MALFORMED;
      const body = JSON.stringify({ statusCode: status, error: code, message });
      // The answer to a HEAD request has no body: a client would read one as garbage after the answer.
      const head = err.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
      socket.write(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? '' : body}`,
      );
    }
    socket.destroy();
  });
}
