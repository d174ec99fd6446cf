/**
 * The benchmark's webhook receiver in its own process, so the bench measures the sender's CPU alone. A plain
 * Node HTTP/1.1 keep-alive server that verifies every signature with `standardwebhooks` (as a real subscriber
 * would) and answers 204. Secret from BENCH_WEBHOOK_SECRET. Prints `URL <url>`; on stdin `stats` prints
 * `STATS <requests> <signature failures>`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { Webhook } from 'standardwebhooks';

const verifier = new Webhook(process.env.BENCH_WEBHOOK_SECRET ?? '');
let requests = 0;
let failures = 0;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    requests++;
    try {
      verifier.verify(Buffer.concat(chunks).toString('utf8'), req.headers as Record<string, string>);
    } catch {
      failures++;
    }
    res.writeHead(204);
    res.end();
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`URL http://127.0.0.1:${(server.address() as AddressInfo).port}/hook\n`);
});
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === 'stats') process.stdout.write(`STATS ${requests} ${failures}\n`);
});
lines.on('close', () => process.exit(0));
