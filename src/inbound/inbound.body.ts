import type { IncomingMessage } from 'node:http';

/** Why a body could not be read: the HTTP status to answer and a message for the caller. */
export class InboundBodyError extends Error {
  constructor(readonly status: 400 | 413 | 415, message: string) {
    super(message);
  }
}

/** The message of a 413 (the same whether the declared length or the bytes read passed the limit). */
export function tooLargeMessage(limit: number): string {
  return `request body larger than this channel's inbound limit of ${limit} bytes (channels[].inbound.maxBodyBytes)`;
}

/**
 * Reads a request body as raw bytes, at most `limit` of them: a declared `Content-Length` over the limit is refused
 * before reading anything, a body that grows past it as soon as it does (the rest is never kept). Bytes are kept as
 * they came, so an HMAC is checked over exactly what the upstream signed; a `Content-Encoding` other than identity is
 * refused (415) rather than inflated.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity') return reject(new InboundBodyError(415, `content-encoding ${encoding} is not accepted on inbound posts: send the body uncompressed`));
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return reject(new InboundBodyError(413, tooLargeMessage(limit)));
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const fail = (err: InboundBodyError) => {
      cleanup();
      chunks.length = 0;
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return fail(new InboundBodyError(413, tooLargeMessage(limit)));
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => fail(new InboundBodyError(400, `cannot read the request body: ${err.message}`));
    // 'close' before 'end': the caller went away mid-body.
    const onClose = () => fail(new InboundBodyError(400, 'the request body ended early: the connection closed'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** The channel id of a path relative to the mount point (`/wa-sales/messages-upsert` → `wa-sales`). */
export function channelIdOf(path: string): string {
  const segment = path.split('/')[1] ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
