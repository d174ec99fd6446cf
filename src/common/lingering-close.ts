import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Bounds of a refused connection's lingering close, counted from the refusal: it is cut this long after, or once this
 * many more bytes of the body were discarded, whichever comes first (a caller that never stops sending holds it no
 * longer). A caller sending its body at 4 MiB/s or more has up to 8 MiB of it read to its end; a slower one still
 * sending at the bound may see the reset after all.
 */
export const REFUSED_LINGER_MS = 2000;
export const REFUSED_LINGER_BYTES = 8 * 1024 * 1024;

/**
 * Answers a request refused before its body was read whole with `Connection: close`, and ends the connection once the
 * answer is out without the caller losing that answer (a lingering close, as nginx's `lingering_close`). Node ends a
 * `Connection: close` exchange with `socket.destroySoon()`, which closes the descriptor as soon as the answer is
 * flushed; body bytes still arriving then make the kernel send a reset, which can reach a caller still writing before
 * it read its answer. On this socket that call only half-closes (the FIN follows the answer) and the rest of the body
 * is read and discarded, counted, never kept (each piece is garbage at once); the socket closes by itself once the
 * caller ends its side too, or is destroyed at REFUSED_LINGER_MS or REFUSED_LINGER_BYTES. The response's own events
 * are untouched: it finishes and closes as before. Call it before the answer is written.
 */
export function closeLingering(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  res.setHeader('connection', 'close');
  socket.destroySoon = () => socket.end();
  const cut = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
  let discarded = 0;
  const discard = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > REFUSED_LINGER_BYTES) socket.destroy();
  };
  req.on('data', discard).resume();
  socket.once('close', () => {
    clearTimeout(cut);
    req.off('data', discard);
  });
}
