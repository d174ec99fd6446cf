/**
 * The demo's local webhook receiver: a loopback HTTP server configured as the bridge's webhook endpoint with a
 * fresh `whsec_` secret. It verifies every delivery with the `standardwebhooks` library (as a real subscriber
 * would) and answers 204, or 401 when the signature does not verify (the bridge then dead-letters it).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { DemoEvent } from './demo-scenarios';

/** One delivery as the receiver saw it. */
export interface Delivery {
  /** The `webhook-id` header (= the CloudEvent id). */
  id: string;
  verified: boolean;
  /** Why verification failed. */
  error?: string;
  body: string;
  event?: DemoEvent & { id: string; provider: string };
}

/** Counts for the summary. */
export interface ReceiverStats {
  delivered: number;
  verified: number;
  failed: number;
  /** Verified deliveries per provider. */
  byProvider: Map<string, number>;
}

/** A running receiver. */
export interface DemoReceiver {
  /** `http://127.0.0.1:<port>/hooks/chatbridge` */
  url: string;
  secret: string;
  stats: ReceiverStats;
  close(): Promise<void>;
}

/** Starts the receiver; `onDelivery` is called for every request, verified or not. */
export async function startDemoReceiver(onDelivery: (d: Delivery) => void): Promise<DemoReceiver> {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const verifier = new Webhook(secret);
  const stats: ReceiverStats = { delivered: 0, verified: 0, failed: 0, byProvider: new Map() };
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const headers = stringHeaders(req);
      const d: Delivery = { id: headers['webhook-id'] ?? '', verified: false, body };
      try {
        verifier.verify(body, headers);
        d.verified = true;
      } catch (err) {
        d.error = err instanceof Error ? err.message : String(err);
      }
      try {
        d.event = JSON.parse(body) as Delivery['event'];
      } catch {
        d.error ??= 'body is not JSON';
      }
      stats.delivered++;
      if (d.verified) {
        stats.verified++;
        const provider = d.event?.provider ?? '?';
        stats.byProvider.set(provider, (stats.byProvider.get(provider) ?? 0) + 1);
      } else {
        stats.failed++;
      }
      onDelivery(d);
      res.writeHead(d.verified ? 204 : 401, d.verified ? {} : { 'content-type': 'application/json' });
      res.end(d.verified ? undefined : JSON.stringify({ error: 'signature verification failed' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/chatbridge`,
    secret,
    stats,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function stringHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') out[k] = v;
  return out;
}
