/**
 * A chatbridge webhook receiver with nothing but `node:http` and `standardwebhooks` (what it does and why:
 * inbox.ts). It takes `POST /webhooks`; anything else is 404 or 405.
 *
 * Point an endpoint of the bridge's config at it (docs/configuration.md#webhooks):
 *
 *   webhooks:
 *     - { id: crm, url: http://localhost:3000/webhooks, secret: "whsec_…" }
 *
 * and run it from the repository root:
 *
 *   WEBHOOK_SECRET=whsec_… PORT=3000 npx ts-node examples/webhook-receiver/node-http.ts
 *
 * Environment: `WEBHOOK_SECRET` (required, the endpoint's secret), `PORT` (default 3000), `HOST` (default: every
 * interface).
 */
import { createServer, type IncomingMessage } from 'node:http';
import { listen, receiverFromEnv, printEvent, WebhookInbox, type ReceiverOptions, type RunningReceiver } from './inbox';

/** Above the bridge's largest event (limits.maxEventBytes, 900 KiB by default). */
const MAX_BODY_BYTES = 1024 * 1024;

/** The body's raw bytes (the signature covers them exactly), or undefined past `MAX_BODY_BYTES`. */
async function rawBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Starts the `node:http` receiver on `opts.port` (0: any free port) and `opts.host` (default: every interface). */
export async function startNodeReceiver(opts: ReceiverOptions): Promise<RunningReceiver> {
  const inbox = new WebhookInbox(opts);
  const server = createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/webhooks') return void res.writeHead(404).end();
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
    rawBody(req).then(
      (body) => res.writeHead(body ? inbox.receive(body, req.headers) : 413).end(),
      () => res.destroy(),
    );
  });
  return listen(server, inbox, opts);
}

/** The command-line receiver: one line per event on stdout. */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<RunningReceiver> {
  return startNodeReceiver({ ...receiverFromEnv(env), handle: printEvent });
}

if (require.main === module) {
  main().then((r) => console.error(`listening on ${r.url}`), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
