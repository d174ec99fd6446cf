import type { IncomingMessage, ServerResponse } from 'node:http';

/** A REST request received by the simulator. */
export interface RecordedRequest {
  method: string;
  /** Path including the query string. */
  path: string;
  /** Headers, lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, the raw string when not JSON, undefined when empty. */
  body: unknown;
  at: number;
}

/** What the REST side needs from the simulator. */
export interface WatchersRestDeps {
  apiKey: string;
  /** The bot id of a valid bearer. */
  verify(token: string): string | undefined;
  /** Posts a message in a room as a user; returns the room message. */
  post(roomId: string, userId: string, text: string): { roomId: string; message: { id: number; text: string }; userId: string };
}

/**
 * The Bot REST API (docs "Bot REST API"): `POST /api/bot/sendMessage` with `X-Api-Key`,
 * `Authorization: Bearer <bot token>` and `X-Bot-Id`, body `{roomId, text | stickerId, …}`; `GET /api/bot/getMe`.
 * Error statuses follow the chat backend's documented ones (unknown key → 404 "Project not found",
 * bad bearer → 403, empty fields → 400); the success body is modelled on its message object.
 */
export class WatchersRest {
  readonly requests: RecordedRequest[] = [];
  private failures = { count: 0, status: 503 };

  constructor(private readonly deps: WatchersRestDeps) {}

  /** The next `count` sends answer `status` without posting. */
  failNext(count: number, status: number): void {
    this.failures = { count, status };
  }

  /** The http server's request handler (socket.io takes its own path before this). */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = parse(raw);
      this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, body, at: Date.now() });
      this.route(req, body, res);
    });
  }

  private route(req: IncomingMessage, body: unknown, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    const known = path === '/api/bot/sendMessage' || path === '/api/bot/getMe';
    if (!known) return json(res, 404, { message: `Cannot ${req.method} ${path}`, statusCode: 404 });
    if (header(req, 'x-api-key') !== this.deps.apiKey) return json(res, 404, { message: 'Project not found', statusCode: 404 });
    const auth = header(req, 'authorization') ?? '';
    const uid = auth.startsWith('Bearer ') ? this.deps.verify(auth.slice('Bearer '.length)) : undefined;
    if (!uid || header(req, 'x-bot-id') !== uid) return json(res, 403, { message: 'Forbidden resource', statusCode: 403 });
    if (path === '/api/bot/getMe') {
      if (req.method !== 'GET') return json(res, 404, { message: `Cannot ${req.method} ${path}`, statusCode: 404 });
      return json(res, 200, { id: 1, name: uid, externalId: uid, project: 'test', isActive: true });
    }
    if (req.method !== 'POST') return json(res, 404, { message: `Cannot ${req.method} ${path}`, statusCode: 404 });
    const b = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
    if (typeof b.roomId !== 'string' || !b.roomId || typeof b.text !== 'string' || !b.text) {
      return json(res, 400, { message: ['roomId should not be empty', 'text should not be empty'], error: 'Bad Request', statusCode: 400 });
    }
    if (this.failures.count > 0) {
      this.failures.count--;
      return json(res, this.failures.status, { message: 'Service Unavailable', statusCode: this.failures.status });
    }
    const posted = this.deps.post(b.roomId, uid, b.text);
    json(res, 200, {
      id: posted.message.id,
      text: posted.message.text,
      type: 'USER',
      isVisible: true,
      isPinned: false,
      createdAt: new Date().toISOString(),
      user: { externalId: uid },
      room: { externalId: posted.roomId },
    });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parse(raw: string): unknown {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function json(res: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
