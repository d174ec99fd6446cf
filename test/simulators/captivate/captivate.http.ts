import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CaptivateHub } from './captivate.hub';
import { asRecord, type ClientFrame, type RecordedFrame } from './captivate.wire';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  status: number;
  at: number;
}

/** What the HTTP API needs of the rest of the simulator. */
export interface HttpApiDeps {
  apiKeys: string[];
  hub: CaptivateHub;
  /** Records a client frame (socket and HTTP share one list). */
  recordFrame(frame: RecordedFrame): void;
  /** True while the socket is connected (replies can reach it). */
  connected(socketId: string): boolean;
}

/**
 * The SDK ≥5 HTTP endpoints, behind `x-api-key`: `POST /api/custom-channel/sockets/message` (a client frame, its
 * replies to the body's `socket_id`; 410 when that socket is gone, as PostToConnection's GoneException) and
 * `GET /api/transcript`. Scripted: POSTs that fail or hang (`failNext`).
 */
export class CaptivateHttpApi {
  readonly requests: RecordedRequest[] = [];
  private failures: Array<number | 'hang'> = [];
  private readonly hung: ServerResponse[] = [];

  constructor(private readonly deps: HttpApiDeps) {}

  /** The next `n` POSTs fail with `status` (nothing acted), or act but never answer (`hang`). */
  failNext(n: number, status: number | 'hang'): void {
    for (let i = 0; i < n; i++) this.failures.push(status);
  }

  /** Hung requests are cut (the server is going away). */
  dropHung(): void {
    for (const res of this.hung.splice(0)) res.destroy();
  }

  /** The http server's request handler. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url ?? '/', 'http://x');
    const rec: RecordedRequest = { method: req.method ?? '', path: `${u.pathname}${u.search}`, headers: req.headers, body, status: 0, at: Date.now() };
    this.requests.push(rec);
    const answer = (status: number, json: unknown) => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    };
    const key = req.headers['x-api-key'];
    if (typeof key !== 'string' || !this.deps.apiKeys.includes(key)) return answer(401, { message: 'Unauthorized' });
    if (req.method === 'GET' && u.pathname === '/api/transcript') {
      const conv = this.deps.hub.conversations.get(u.searchParams.get('conversation_id') ?? '');
      return conv ? answer(200, { conversation_id: conv.id, transcript: conv.transcript }) : answer(404, { message: 'Conversation not found' });
    }
    if (req.method !== 'POST' || u.pathname !== '/api/custom-channel/sockets/message') return answer(404, { message: 'Not Found' });
    let frame: ClientFrame;
    try {
      frame = JSON.parse(body) as ClientFrame;
    } catch {
      return answer(400, { message: 'Invalid JSON' });
    }
    this.deps.recordFrame({ via: 'http', socketId: typeof frame.event?.socket_id === 'string' ? frame.event.socket_id : undefined, at: Date.now(), text: body, json: frame });
    const failure = this.failures.shift();
    if (typeof failure === 'number') return answer(failure, { message: 'Simulated failure' });
    if (frame.action !== 'sendMessage' || typeof frame.event?.event_type !== 'string') return answer(400, { message: 'Invalid body' });
    const socketId = typeof frame.event.socket_id === 'string' ? frame.event.socket_id : undefined;
    // PostToConnection's GoneException: the socket named for the replies is not connected.
    if (socketId && !this.deps.connected(socketId)) return answer(410, { message: 'GoneException: socket_id is not connected' });
    const result = this.deps.hub.handle(socketId, frame.event.event_type, asRecord(frame.event.event_payload));
    if (failure === 'hang') {
      this.hung.push(res);
      return;
    }
    answer(200, result);
  }
}
