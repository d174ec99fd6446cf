/**
 * What both webhook receivers do with a delivery, whatever the HTTP framework: verify its signature, skip a repeat,
 * answer at once, process afterwards (docs/webhooks.md#signing-and-order).
 *
 * - **Verify the raw body.** The signature covers the exact bytes sent, so it is checked before any JSON parsing
 *   (a parsed and re-serialised body would not match). A bad or missing signature, or a timestamp more than
 *   5 minutes off, is answered 401.
 * - **Answer 2xx fast.** The bridge waits for the answer before it sends the next event of the same conversation,
 *   and a slow answer (past the endpoint's `timeoutMs`) counts as a failure and is retried. So the event is queued
 *   and answered 204 at once; processing happens after the answer.
 * - **Dedupe by `webhook-id`.** It is the CloudEvent `id`, the same on every retry and replay; a repeat is
 *   answered 204 and not processed again. Only verified ids are recorded, so a forged request cannot make a real
 *   event look like a repeat.
 * - **Order.** Events are processed one at a time in arrival order; the bridge already sends the events of one
 *   conversation in order, one after the other.
 *
 * A queue in memory loses what it holds if the process dies after answering; where that matters, write the event
 * to durable storage before answering (still fast) and process from there.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { ChatbridgeJsonEvent } from '../chatbridge-event';
import { SeenIds } from '../seen-ids';

/** A webhook body: a structured CloudEvent. */
export type WebhookEvent = ChatbridgeJsonEvent;

/** What the receivers need; `secret` is the endpoint's `whsec_…` secret from the bridge's config. */
export interface InboxOptions {
  secret: string;
  /** Processes one event, after its delivery was answered. */
  handle: (event: WebhookEvent) => Promise<void> | void;
  /** How many recent `webhook-id`s are remembered to skip repeats. */
  dedupeSize?: number;
  log?: (line: string) => void;
}

/** Verifies, dedupes and queues deliveries; `receive` returns the status to answer. */
export class WebhookInbox {
  private readonly webhook: Webhook;
  private readonly seen: SeenIds;
  private readonly log: (line: string) => void;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: InboxOptions) {
    this.webhook = new Webhook(opts.secret);
    this.seen = new SeenIds(opts.dedupeSize ?? 10_000);
    this.log = opts.log ?? ((line: string) => console.error(line));
  }

  /** Takes one POST: its raw body and its headers (Node's lower-case names). */
  receive(rawBody: Buffer, headers: Record<string, string | string[] | undefined>): 204 | 401 {
    const single: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) if (typeof value === 'string') single[name] = value;
    let event: WebhookEvent;
    try {
      event = this.webhook.verify(rawBody, single) as WebhookEvent;
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      this.log(`refused a delivery: ${err.message}`);
      return 401;
    }
    if (this.seen.seen(single['webhook-id'])) {
      this.log(`duplicate ${single['webhook-id']} skipped`);
      return 204;
    }
    this.queue = this.queue.then(() => this.opts.handle(event)).catch((err: unknown) => this.log(`processing ${event.id} failed: ${String(err)}`));
    return 204;
  }

  /** Resolves once everything received so far has been processed (for a clean shutdown). */
  drained(): Promise<void> {
    return this.queue;
  }
}

/** How to start a receiver: the inbox's options and where to listen. */
export interface ReceiverOptions extends InboxOptions {
  /** 0: any free port. */
  port: number;
  /** Default: every interface. */
  host?: string;
}

/** A running receiver. */
export interface RunningReceiver {
  /** `http://<host>:<port>/webhooks` (127.0.0.1 when listening on every interface). */
  url: string;
  inbox: WebhookInbox;
  close(): Promise<void>;
}

/** Starts `server` where `opts` says; closing it also ends kept-alive connections (the bridge keeps them open). */
export async function listen(server: Server, inbox: WebhookInbox, opts: ReceiverOptions): Promise<RunningReceiver> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}/webhooks`,
    inbox,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** What both command-line receivers read from the environment: `WEBHOOK_SECRET`, `PORT`, `HOST`. */
export function receiverFromEnv(env: NodeJS.ProcessEnv): Omit<ReceiverOptions, 'handle'> {
  const secret = env.WEBHOOK_SECRET;
  if (!secret) throw new Error("set WEBHOOK_SECRET to the endpoint's secret (whsec_…) from the bridge's webhooks config");
  return { port: Number(env.PORT ?? 3000), host: env.HOST, secret };
}

/** Prints one line per event: what the command-line receivers do. */
export function printEvent(event: WebhookEvent): void {
  console.log(event.time, event.type, event.partitionkey, event.id, JSON.stringify(event.data));
}
