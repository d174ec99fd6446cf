/**
 * A chatbridge webhook receiver with Express: `POST /webhooks`, verified with `standardwebhooks`
 * (what it does and why: inbox.ts).
 *
 * Point an endpoint of the bridge's config at it (docs/configuration.md#webhooks):
 *
 *   webhooks:
 *     - { id: crm, url: http://localhost:3000/webhooks, secret: "whsec_…" }
 *
 * and run it from the repository root:
 *
 *   WEBHOOK_SECRET=whsec_… PORT=3000 npx ts-node examples/webhook-receiver/express.ts
 *
 * Environment: `WEBHOOK_SECRET` (required, the endpoint's secret), `PORT` (default 3000), `HOST` (default: every
 * interface).
 */
import { createServer } from 'node:http';
import express from 'express';
import { listen, receiverFromEnv, printEvent, WebhookInbox, type ReceiverOptions, type RunningReceiver } from './inbox';

/** Starts the Express receiver on `opts.port` (0: any free port) and `opts.host` (default: every interface). */
export async function startExpressReceiver(opts: ReceiverOptions): Promise<RunningReceiver> {
  const inbox = new WebhookInbox(opts);
  const app = express();
  // The raw bytes, not express.json(): the signature covers the body exactly as sent. The limit is above the
  // bridge's largest event (limits.maxEventBytes, 900 KiB by default).
  app.post('/webhooks', express.raw({ type: () => true, limit: '1mb' }), (req, res) => {
    res.status(inbox.receive(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), req.headers)).end();
  });
  return listen(createServer(app), inbox, opts);
}

/** The command-line receiver: one line per event on stdout. */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<RunningReceiver> {
  return startExpressReceiver({ ...receiverFromEnv(env), handle: printEvent });
}

if (require.main === module) {
  main().then((r) => console.error(`listening on ${r.url}`), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
