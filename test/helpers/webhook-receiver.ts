import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { createEvent, type PipelineEvent } from '../../src/envelope/envelope';
import { waitFor } from './bridge-harness';
import { eventSchemaProblem, throwSchemaProblems } from './event-schemas';

/** One request the receiver got. */
export interface ReceivedRequest {
  /** 1-based arrival number. */
  n: number;
  /** Date.now() at arrival. */
  at: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  event: { id: string; type: string; partitionkey: string; channelid: string; data: { message?: { text?: string } } };
  /** The status answered (undefined: hung or destroyed). */
  status?: number;
}

/** How to answer one request: a status (default 204) after an optional delay, or hang, or drop the socket. */
export interface Reply {
  status?: number;
  delayMs?: number;
  headers?: Record<string, string>;
  body?: string;
  hang?: boolean;
  destroy?: boolean;
}

/**
 * A real HTTP receiver on 127.0.0.1 that records every request and answers as the test says. The body of every
 * delivery (a request with a `webhook-id`) is checked against its event type's schema (docs/schemas): the waits and
 * `stop` throw once one did not match.
 */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly schemaProblems: string[] = [];
  private responder: (req: ReceivedRequest) => Reply | undefined = () => undefined;
  private server?: Server;
  private port: number;

  constructor(opts: { port?: number } = {}) {
    this.port = opts.port ?? 0;
  }

  /** `http://127.0.0.1:<port>/hook` */
  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Decides the answer of every later request (undefined → 204). */
  respond(fn: (req: ReceivedRequest) => Reply | undefined): void {
    this.responder = fn;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throwSchemaProblems('WebhookReceiver', this.schemaProblems);
  }

  /** Requests answered 2xx, in arrival order. */
  delivered(): ReceivedRequest[] {
    return this.requests.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300);
  }

  /** Waits until `n` requests were answered 2xx. */
  async waitForDelivered(n: number, timeoutMs = 10_000): Promise<ReceivedRequest[]> {
    await waitFor(`${n} deliveries (have ${this.delivered().length})`, () => (throwSchemaProblems('WebhookReceiver', this.schemaProblems), this.delivered().length >= n), timeoutMs);
    return this.delivered();
  }

  /** Waits until `n` requests arrived (any answer). */
  async waitForRequests(n: number, timeoutMs = 10_000): Promise<ReceivedRequest[]> {
    await waitFor(`${n} requests (have ${this.requests.length})`, () => (throwSchemaProblems('WebhookReceiver', this.schemaProblems), this.requests.length >= n), timeoutMs);
    return this.requests;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    let event: ReceivedRequest['event'];
    try {
      event = JSON.parse(body) as ReceivedRequest['event'];
      const problem = headers['webhook-id'] ? eventSchemaProblem(event) : undefined;
      if (problem) this.schemaProblems.push(problem);
    } catch {
      event = { id: '', type: '', partitionkey: '', channelid: '', data: {} };
    }
    const rec: ReceivedRequest = { n: this.requests.length + 1, at: Date.now(), method: req.method ?? '', path: req.url ?? '', headers, body, event };
    this.requests.push(rec);
    const reply = this.responder(rec) ?? {};
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (reply.destroy) return void req.socket.destroy();
    if (reply.hang) return;
    rec.status = reply.status ?? 204;
    res.writeHead(rec.status, reply.headers ?? {});
    res.end(reply.body ?? '');
  }
}

/** A fresh `whsec_` secret of 32 bytes. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Throws unless `standardwebhooks` verifies the request with `secret`. */
export function verify(secret: string, req: ReceivedRequest): unknown {
  return new Webhook(secret).verify(req.body, req.headers);
}

let seq = 0;

/** A `chatbridge.message.received` pipeline event of `channelId`/`conversationId` carrying `text`. */
export function messageEvent(channelId: string, conversationId: string, text: string): PipelineEvent {
  const { event, stableId } = createEvent({
    type: 'chatbridge.message.received',
    channelId,
    provider: 'zapthinker',
    upstreamKey: `msg:${conversationId}:${text}:${++seq}`,
    conversationId,
    data: { channel: { id: channelId, provider: 'zapthinker' }, conversation: { id: conversationId }, message: { direction: 'inbound', text }, upstream: { event: 'test', payload: { text } } },
  });
  return { event, stableId, receivedAt: performance.now() };
}

/** Texts of the events in `reqs`, in order. */
export function texts(reqs: readonly ReceivedRequest[]): string[] {
  return reqs.map((r) => r.event.data.message?.text ?? '');
}

/** The receivers of one spec file: `start()` in a test, `stopAll()` in `afterEach`. */
export class ReceiverPool {
  private readonly started: WebhookReceiver[] = [];

  /** Starts a receiver (on `port`, default any) and keeps it for `stopAll`. */
  async start(port?: number): Promise<WebhookReceiver> {
    const r = new WebhookReceiver({ port });
    await r.start();
    this.started.push(r);
    return r;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.started.splice(0).map((r) => r.stop()));
  }
}
