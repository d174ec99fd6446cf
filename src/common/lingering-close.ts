import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestHandler } from 'express';

/**
 * Bounds of a refused connection's lingering close (as nginx's `lingering_timeout` and `lingering_time`): it is cut
 * once nothing arrived for REFUSED_LINGER_IDLE_MS, REFUSED_LINGER_MS after the refusal at the latest, or once
 * REFUSED_LINGER_BYTES more of the body were discarded, whichever comes first. A caller still sending at the bound
 * may see the reset after all; one that never stops cannot hold the connection longer.
 */
export const REFUSED_LINGER_IDLE_MS = 2000;
export const REFUSED_LINGER_MS = 10_000;
export const REFUSED_LINGER_BYTES = 8 * 1024 * 1024;

/** Connections closing after a refusal: nothing more is served on them. */
const lingering = new WeakSet<Socket>();

/**
 * Answers a request refused before its body was read whole with `Connection: close`, and ends the connection once the
 * answer is out without the caller losing that answer (a lingering close). Node ends a `Connection: close` exchange
 * with `socket.destroySoon()`, which closes the descriptor as soon as the answer is flushed; body bytes still arriving
 * then make the kernel send a reset, which can reach a caller still writing before it read its answer. On this socket
 * that call only half-closes (the FIN follows the answer) and the rest of the body is read and discarded, counted,
 * never kept (each piece is garbage at once); the socket closes by itself once the caller ends its side too, or is
 * destroyed at the bounds above. The response's own events are untouched: it finishes and closes as before. Call it
 * before the answer is written.
 */
export function closeLingering(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  res.setHeader('connection', 'close');
  lingering.add(socket);
  socket.destroySoon = () => socket.end();
  const cut = (): void => void socket.destroy();
  const total = setTimeout(cut, REFUSED_LINGER_MS);
  const idle = setTimeout(cut, REFUSED_LINGER_IDLE_MS);
  let discarded = 0;
  const discard = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > REFUSED_LINGER_BYTES) socket.destroy();
    else idle.refresh();
  };
  req.on('data', discard).resume();
  socket.once('close', () => {
    clearTimeout(total);
    clearTimeout(idle);
    req.off('data', discard);
  });
}

/**
 * First on the HTTP routes (socket.io's own transport requests do not pass here): the connection's end, decided once.
 * - A request that follows a refused one on its connection (pipelined behind it) is not served: the connection is
 *   closing (`Connection: close` was answered), so its answer could never be written, and what it asks must not
 *   happen unseen. Its body is discarded with the rest; `dropped` is told (logged and counted).
 * - A request that arrives while the bridge stops (`stopping`) is answered `Connection: close`. (Requests already in
 *   flight then are answered keep-alive; the bootstrap's close shortens the server's keep-alive so that their
 *   connections do not hold the stop either.)
 */
export function connectionPolicy(stopping: () => boolean, dropped: (req: IncomingMessage) => void): RequestHandler {
  return (req, res, next) => {
    if (lingering.has(req.socket)) {
      dropped(req);
      return void req.resume();
    }
    if (stopping()) res.setHeader('connection', 'close');
    next();
  };
}
