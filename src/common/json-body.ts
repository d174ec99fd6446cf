import { json, type RequestHandler } from 'express';
import { apiError } from './api-error';
import { describeError } from './errors';

/**
 * The API's JSON body parser (`api.maxBodyBytes`), answering its own failures in the API's error shape:
 * 413 naming the limit, 400 for a body that is not JSON. Bodies another parser read already (`/v1/inbound/*`,
 * raw) are skipped.
 */
export function jsonBodyParser(limitBytes: number): RequestHandler {
  const parse = json({ limit: limitBytes });
  return (req, res, next) => {
    parse(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next();
      const status = bodyErrorStatus(err);
      const message = status === 413
        ? `request body larger than the API limit of ${limitBytes} bytes (api.maxBodyBytes)`
        : status === 400
          ? `request body is not valid JSON: ${describeError(err)}`
          : `cannot read the request body: ${describeError(err)}`;
      res.status(status).json(apiError(status, message));
    });
  };
}

/** body-parser errors carry the HTTP status to answer (413 too large, 400 bad JSON or aborted, 415 encoding). */
export function bodyErrorStatus(err: unknown): number {
  const status = typeof err === 'object' && err !== null && 'status' in err ? (err as { status: unknown }).status : undefined;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 400;
}
