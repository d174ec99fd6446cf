import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EvolutionInstances } from './zapthinker.instances';
import type { EvolutionPayloads } from './zapthinker.payloads';
import { EVOLUTION_CONFIG_EVENTS, evolutionError, toJid, upperHex, type EvolutionMessageData, type SendTextResponse } from './zapthinker.protocol';
import type { EvolutionWebhooks } from './zapthinker.webhook';

/** A REST request received by the simulator. */
export interface RecordedRequest {
  /** HTTP method. */
  method: string;
  /** Path including query string. */
  path: string;
  /** Request headers (lower-case names). */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, raw string when not JSON, undefined when empty. */
  body: unknown;
  /** Epoch ms of arrival. */
  receivedAt: number;
}

/** What the REST routes need from the simulator. */
export interface EvolutionRestDeps {
  instances: EvolutionInstances;
  webhooks: EvolutionWebhooks;
  payloads: EvolutionPayloads;
  /** Emits an event to the instance's sinks (socket namespace, webhook), as the simulator's `emit`. */
  emit(instance: string, event: string, data: unknown): void;
  /** True while the socket.io server runs (echoes are dropped otherwise). */
  running(): boolean;
  /** Creates the instance's namespace, as an enabled websocket does. */
  touch(instance: string): void;
  /** Delay between the sendText answer and its `send.message` echo, in ms. */
  sendEchoDelayMs: number;
}

/**
 * The REST endpoints the bridge uses: `POST /message/sendText/{instance}` (answer, then the `send.message` echo on the
 * sinks), `POST|GET /websocket/set|find/{instance}`, `POST|GET /webhook/set|find/{instance}`, behind Evolution's auth
 * guard and with its error bodies. Scripted behaviours: sends that fail, hang (after sending, or stalled before it),
 * answer too much, or go to numbers not on WhatsApp.
 */
export class EvolutionRest {
  /** Every REST request received (socket.io traffic excluded), oldest first. */
  readonly requests: RecordedRequest[] = [];
  private readonly notOnWhatsApp = new Set<string>();
  private readonly hungResponses = new Set<ServerResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private failures: number[] = [];
  private hangs = 0;
  private stalls = 0;
  private oversized: number[] = [];
  /** Bytes each oversized answer wrote before its client closed the connection (or all of them), oldest first. */
  readonly oversizedWritten: number[] = [];

  constructor(private readonly deps: EvolutionRestDeps) {}

  /** Makes sendText answer 400 "not on WhatsApp" for this number (digits or JID). */
  markNotOnWhatsApp(number: string): void {
    this.notOnWhatsApp.add(toJid(number));
  }

  /** The next `n` sendText calls answer `status` immediately, without sending. */
  failNextSends(n: number, status: number): void {
    for (let i = 0; i < n; i++) this.failures.push(status);
  }

  /** The next `n` sendText calls send (emit send.message) but never answer. */
  hangNextSends(n: number): void {
    this.hangs += n;
  }

  /**
   * The next `n` sendText calls are read and never answered, and nothing is sent (no `send.message`): an upstream that
   * accepted the connection and hung before acting.
   */
  stallNextSends(n: number): void {
    this.stalls += n;
  }

  /** The next `n` sendText calls send (emit send.message) and answer 201 with a body of `bytes` bytes, streamed. */
  oversizeNextSends(n: number, bytes: number): void {
    for (let i = 0; i < n; i++) this.oversized.push(bytes);
  }

  /** Scheduled echoes are dropped. */
  cancelEchoes(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Hung requests are cut (the server is going away). */
  dropHung(): void {
    for (const res of this.hungResponses) res.destroy();
    this.hungResponses.clear();
  }

  /** The http server's request handler (socket.io takes its own path before this). */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = undefined;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw) as unknown;
        } catch {
          body = raw;
        }
      }
      this.requests.push({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: { ...req.headers },
        body,
        receivedAt: Date.now(),
      });
      void this.route(req, res, body).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) json(res, 500, evolutionError(500, [String(err)]));
      });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const method = req.method ?? 'GET';
    const m = /^\/(message\/sendText|websocket\/set|websocket\/find|webhook\/set|webhook\/find)\/([^/]+)\/?$/.exec(path);
    if (!m) {
      json(res, 404, evolutionError(404, ['Not Found']));
      return;
    }
    const route = m[1];
    const instance = decodeURIComponent(m[2]);
    const expected = route.endsWith('/find') ? 'GET' : 'POST';
    if (method !== expected) {
      json(res, 404, evolutionError(404, ['Not Found']));
      return;
    }

    if (route === 'message/sendText' && this.failures.length > 0) {
      const status = this.failures.shift() as number;
      json(res, status, evolutionError(status, ['Simulated failure']));
      return;
    }
    if (route === 'message/sendText' && this.stalls > 0) {
      this.stalls--;
      this.keepHung(res);
      return;
    }

    const { instances, webhooks } = this.deps;
    const header = req.headers['apikey'];
    if (!instances.authorises(instance, Array.isArray(header) ? header[0] : header)) {
      json(res, 401, { status: 401, error: 'Unauthorized', response: { message: 'Unauthorized' } });
      return;
    }
    if (instances.strict && !instances.find(instance)) {
      json(res, 404, evolutionError(404, [`The "${instance}" instance does not exist`]));
      return;
    }

    switch (route) {
      case 'message/sendText':
        await this.sendText(res, instance, body);
        return;
      case 'websocket/set':
        this.websocketSet(res, instance, body);
        return;
      case 'webhook/set': {
        const error = webhooks.set(instance, body, EVOLUTION_CONFIG_EVENTS);
        if (error) json(res, 400, evolutionError(400, [[error]]));
        else json(res, 201, { webhook: { instanceName: instance, webhook: webhooks.find(instance) } });
        return;
      }
      case 'webhook/find':
        json(res, 200, webhooks.find(instance) ?? null);
        return;
      default:
        json(res, 200, instances.websocketConfig(instance) ?? null);
    }
  }

  private async sendText(res: ServerResponse, instance: string, body: unknown): Promise<void> {
    const obj = isRecord(body) ? body : {};
    const missing: string[] = [];
    if (!('number' in obj)) missing.push('instance requires property "number"');
    if (!('text' in obj)) missing.push('instance requires property "text"');
    if (missing.length > 0) {
      json(res, 400, evolutionError(400, [missing]));
      return;
    }
    const number = obj['number'];
    const text = obj['text'];
    if (typeof number !== 'string' || typeof text !== 'string') {
      const errs: string[] = [];
      if (typeof number !== 'string') errs.push('instance.number is not of a type(s) string');
      if (typeof text !== 'string') errs.push('instance.text is not of a type(s) string');
      json(res, 400, evolutionError(400, [errs]));
      return;
    }
    if (text.trim().length === 0) {
      json(res, 400, evolutionError(400, ['Text is required']));
      return;
    }
    const jid = toJid(number);
    if (this.notOnWhatsApp.has(jid)) {
      json(res, 400, evolutionError(400, [{ jid, exists: false, number }]));
      return;
    }
    const delay = typeof obj['delay'] === 'number' ? obj['delay'] : 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));

    const id = `BAE5${upperHex(6)}`;
    const ts = Math.floor(Date.now() / 1000);
    const response: SendTextResponse = {
      key: { remoteJid: jid, fromMe: true, id },
      message: { extendedTextMessage: { text } },
      messageTimestamp: String(ts),
      status: 'PENDING',
    };
    const echo: EvolutionMessageData = {
      ...this.deps.payloads.messageUpsert({ instance, remoteJid: jid, text, fromMe: true, id, timestamp: ts }),
      status: 'SERVER_ACK',
    };
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.deps.running()) this.deps.emit(instance, 'send.message', echo);
    }, this.deps.sendEchoDelayMs);
    this.timers.add(timer);

    if (this.hangs > 0) {
      this.hangs--;
      this.keepHung(res);
      return;
    }
    const oversize = this.oversized.shift();
    if (oversize !== undefined) return streamAnswer(res, oversize, (written) => this.oversizedWritten.push(written));
    json(res, 201, response);
  }

  /** Leaves `res` unanswered until the client goes away or `dropHung` cuts it. */
  private keepHung(res: ServerResponse): void {
    this.hungResponses.add(res);
    res.on('close', () => this.hungResponses.delete(res));
  }

  private websocketSet(res: ServerResponse, instance: string, body: unknown): void {
    const ws = isRecord(body) && isRecord(body['websocket']) ? body['websocket'] : undefined;
    if (!ws || typeof ws['enabled'] !== 'boolean') {
      json(res, 400, evolutionError(400, [['instance.websocket requires property "enabled"']]));
      return;
    }
    const rawEvents: unknown[] = Array.isArray(ws['events']) ? (ws['events'] as unknown[]) : [];
    const record = this.deps.instances.setWebsocket(instance, ws['enabled'], rawEvents);
    if ('errors' in record) {
      json(res, 400, evolutionError(400, [record.errors]));
      return;
    }
    if (record.enabled && this.deps.running()) this.deps.touch(instance);
    json(res, 201, record);
  }
}

/**
 * A 201 whose JSON body is `bytes` long, written 64 KiB at a time as the client reads: a client that stops reading
 * pauses it, one that closes ends it. `done` is told how many bytes were written.
 */
function streamAnswer(res: ServerResponse, bytes: number, done: (written: number) => void): void {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const total = Math.max(2, bytes);
  let written = 0;
  const write = (data: Buffer | string): boolean => {
    written += data.length;
    return res.write(data);
  };
  res.writeHead(201, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': total });
  res.on('error', () => undefined);
  res.once('close', () => done(written));
  write('[');
  const more = (): void => {
    while (written < total - 1 && !res.destroyed) {
      if (!write(chunk.subarray(0, Math.min(chunk.length, total - 1 - written)))) return void res.once('drain', more);
    }
    if (!res.destroyed) {
      written += 1;
      res.end(']');
    }
  };
  more();
}

function json(res: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
