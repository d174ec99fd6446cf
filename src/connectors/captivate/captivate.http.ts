import { CommandError } from '../../common/errors';
import { upstreamHttp, upstreamStatusError } from '../../common/upstream-http';
import { httpBody, type CaptivateWireEvent } from './captivate.commands';

/**
 * Captivate's HTTP API (SDK ≥5 transport) follows the shared command table (src/common/upstream-http.ts),
 * with one row of its own in front: 410 = the socket_id is stale; the next connection brings a new one,
 * so the command is retriable and surely was not acted on.
 */
export function statusError(status: number, what: string): CommandError {
  if (status === 410) return new CommandError('socket_gone', `${what}: HTTP 410 (socket_id no longer connected)`, { retriable: true, sent: false });
  return upstreamStatusError(status, what);
}

/** Captivate's HTTP endpoints: `POST /api/custom-channel/sockets/message` and `GET /api/transcript`. */
export class CaptivateHttp {
  private readonly base: string;

  constructor(baseUrl: string, private readonly apiKey: string, private readonly timeoutMs: number) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  /** Posts one event; resolves with the answer's body (JSON or text) on 2xx, else rejects with a CommandError. */
  postEvent(ev: CaptivateWireEvent, socketId: string | undefined): Promise<unknown> {
    return this.request('POST', '/api/custom-channel/sockets/message', `${ev.event_type} over HTTP`, httpBody(ev, socketId));
  }

  /** Reads a conversation's transcript (`{transcript: […]}`). */
  getTranscript(conversationId: string): Promise<unknown> {
    return this.request('GET', `/api/transcript?conversation_id=${encodeURIComponent(conversationId)}`, 'transcript');
  }

  private async request(method: 'GET' | 'POST', path: string, what: string, body?: string): Promise<unknown> {
    const headers: Record<string, string> = { 'x-api-key': this.apiKey, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    // A failure is the shared table's; a 2xx whose body was cut still means the upstream accepted (`data` undefined).
    const res = await upstreamHttp.request({
      url: `${this.base}${path}`, method, headers, data: body, timeout: this.timeoutMs, upstream: { what, status: (status) => statusError(status, what) },
    });
    const text = res.data;
    if (text === undefined || !String(res.headers['content-type'] ?? '').includes('json')) return text;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
}
