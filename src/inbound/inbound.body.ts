import { raw, type RequestHandler } from 'express';
import { apiError } from '../common/api-error';
import { describeError } from '../common/errors';
import { bodyErrorStatus } from '../common/json-body';

/** Body limit of a channel without its own `inbound.maxBodyBytes` (and of unknown channel ids). */
export const DEFAULT_INBOUND_MAX_BYTES = 1024 * 1024;

/**
 * Reads `/v1/inbound/*` bodies as raw bytes, before the app's JSON parser (which then skips them): the HMAC is
 * computed over exactly the bytes the upstream signed, and each channel's `inbound.maxBodyBytes` applies here
 * alone; other routes keep their own limit. A body over the limit is answered 413 in the API's JSON error shape.
 */
export function inboundBodyParser(limitOf: (channelId: string) => number | undefined, onTooLarge: (channelId: string) => void): RequestHandler {
  const parsers = new Map<number, RequestHandler>();
  return (req, res, next) => {
    const channelId = channelIdOf(req.path);
    const limit = limitOf(channelId) ?? DEFAULT_INBOUND_MAX_BYTES;
    let parser = parsers.get(limit);
    if (!parser) {
      parser = raw({ type: () => true, limit });
      parsers.set(limit, parser);
    }
    parser(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next();
      const status = bodyErrorStatus(err);
      if (status === 413) onTooLarge(channelId);
      const message = status === 413
        ? `request body larger than this channel's inbound limit of ${limit} bytes (channels[].inbound.maxBodyBytes)`
        : `cannot read the request body: ${describeError(err)}`;
      res.status(status).json(apiError(status, message));
    });
  };
}

/** The channel id of a path relative to the mount point (`/wa-sales/messages-upsert` → `wa-sales`). */
function channelIdOf(path: string): string {
  const segment = path.split('/')[1] ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
