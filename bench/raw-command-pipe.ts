/**
 * The command phase's honest baseline: a minimal hand-written command pipe doing the durable work of the bridge's HTTP
 * command door with the Kafka command ledger, without its features. Per `POST /v1/channels/<id>/commands`: the
 * `accepted` record is acknowledged by Kafka before the 202; then, in its conversation's order, `sending` is
 * acknowledged before the upstream call, the call goes out through the product's `upstreamHttp` exactly as the
 * ZapThinker connector sends it, `sent` is acknowledged, and the `chatbridge.command.result` event goes to the events
 * topic. Ledger records are group-committed like KafkaLedgerStore's (one produce request per event-loop turn, one in
 * flight, acks -1, not idempotent); events are batched like the Kafka sink's (one request in flight, gzip, acks -1,
 * idempotent), built by the product's `createEvent` and `toKafkaMessage` so the records are the bridge's. It does not
 * linger (the bridge's `kafka.producer.lingerMs`): with 16 commands in flight each 202 would wait for the next
 * request's start, and the pipe, which has CPU to spare there, reached 2,700-2,740 commands/s so against 4,370-4,650
 * without; its best is the baseline. What it leaves out is what the bridge adds: validation, the idempotency ledger read back, rate limits, metrics, retries,
 * echo handling, queue bounds, supervision. It runs on the kafkajs the bench fixed as the bridge fixes it (run.ts),
 * so the CPU figures compare the work and not a known kafkajs waste.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompressionTypes, Kafka, logLevel, type Message, type Producer, type ProducerRecord } from 'kafkajs';
import { upstreamHttp } from '../src/common/upstream-http';
import { javaCompatiblePartitioner } from '../src/kafka/partitioner';
import { ZapThinkerOptions } from '../src/connectors/zapthinker/zapthinker.options';
import { restBase, sendTextOutcome, sendTextRequest } from '../src/connectors/zapthinker/zapthinker.commands';
import { createEvent } from '../src/envelope/envelope';
import { toKafkaMessage } from '../src/sinks/kafka/kafka.record';

export interface RawCommandPipe {
  url: string;
  /** commands whose `sent` record Kafka acknowledged */
  finished(): number;
  /** commands (or result events) that failed anywhere: a ledger write, the upstream call, the events topic */
  failed(): number;
  close(): Promise<void>;
}

/** What a request body is taken to be: only `JSON.parse` checks it. */
interface RawCommand {
  commandId: string;
  type: string;
  conversationId: string;
  text: string;
}

/** A ledger record, shaped like the bridge's CommandRecord (without the fields only its features use). */
interface RawRecord {
  commandId: string;
  channelId: string;
  type: string;
  status: 'accepted' | 'sending' | 'sent';
  attempts: number;
  acceptedAt: string;
  updatedAt: string;
  command?: RawCommand;
  upstreamMessageId?: string;
  result?: unknown;
}

/** Most records in one produce request (KafkaLedgerStore's MAX_BATCH, the sink's default batchSize). */
const MAX_BATCH = 500;
/** The connector's default `commandTimeoutMs`: the upstream call is bounded as the bridge bounds it. */
const SEND_TIMEOUT_MS = new ZapThinkerOptions().commandTimeoutMs;
const COMMANDS_PATH = /^\/v1\/channels\/([^/]+)\/commands$/;

interface Pending {
  message: Message;
  settle: (err?: unknown) => void;
}

/**
 * Sends what `push` queued, one produce request at a time, up to MAX_BATCH records each; a push resolves once its
 * batch is acknowledged. `defer` says when a flush starts after the first push: `setImmediate` group-commits the
 * records of one event-loop turn (the ledger), `queueMicrotask` starts at once like the sink's woken loop.
 */
function batcher(producer: Producer, send: Omit<ProducerRecord, 'messages'>, defer: (flush: () => void) => void): (message: Message) => Promise<void> {
  const queue: Pending[] = [];
  let flushing = false;
  const flush = async () => {
    while (queue.length) {
      const batch = queue.splice(0, MAX_BATCH);
      try {
        await producer.send({ ...send, messages: batch.map((p) => p.message) });
        for (const p of batch) p.settle();
      } catch (err) {
        for (const p of batch) p.settle(err);
      }
    }
    flushing = false;
  };
  return (message) => new Promise<void>((resolve, reject) => {
    queue.push({ message, settle: (err) => (err ? reject(err) : resolve()) });
    if (flushing) return;
    flushing = true;
    defer(() => void flush());
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function answer(res: ServerResponse, status: number, body: object): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

/** Starts the pipe on 127.0.0.1 (a free port), sending to the ZapThinker API at `simUrl` as instance `instance`. */
export async function startRawCommandPipe(opts: { brokers: string[]; simUrl: string; instance: string; apiKey: string; topics: { ledger: string; events: string } }): Promise<RawCommandPipe> {
  const kafka = new Kafka({ clientId: 'bench-raw-command-pipe', brokers: opts.brokers, logLevel: logLevel.NOTHING });
  // Not idempotent, as KafkaLedgerStore's writer: a repeated ledger record is harmless.
  const ledgerProducer = kafka.producer({ allowAutoTopicCreation: true, createPartitioner: javaCompatiblePartitioner });
  const eventsProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true, createPartitioner: javaCompatiblePartitioner });
  await Promise.all([ledgerProducer.connect(), eventsProducer.connect()]);
  const ledger = batcher(ledgerProducer, { topic: opts.topics.ledger, acks: -1 }, setImmediate);
  const events = batcher(eventsProducer, { topic: opts.topics.events, acks: -1, compression: CompressionTypes.GZIP }, queueMicrotask);
  const write = (rec: RawRecord) => ledger({ key: rec.commandId, value: JSON.stringify(rec) });
  const base = restBase(opts.simUrl);
  const lanes = new Map<string, Promise<void>>();
  let finished = 0;
  let failed = 0;
  /** The latest result event pushed: batches go one after another, so once it settles every earlier one has. */
  let lastEvent: Promise<void> = Promise.resolve();
  const fail = (what: string, err: unknown) => {
    if (failed++ === 0) console.error(`raw command pipe: ${what} failed:`, err instanceof Error ? err.message : err);
  };

  /** `sending`, the upstream call, `sent`, then the result event: what the bridge's lane runs per command. */
  const deliver = async (rec: RawRecord, cmd: RawCommand) => {
    rec.status = 'sending';
    rec.attempts = 1;
    rec.updatedAt = new Date().toISOString();
    await write(rec);
    const req = sendTextRequest(base, opts.instance, opts.apiKey, { number: cmd.conversationId, text: cmd.text });
    const res = await upstreamHttp.request({
      url: req.url, method: req.method, headers: req.headers, data: req.body, timeout: SEND_TIMEOUT_MS, upstream: { what: 'ZapThinker sendText' },
    });
    const outcome = sendTextOutcome(JSON.parse(res.data ?? 'null'));
    Object.assign(rec, { status: 'sent', updatedAt: new Date().toISOString(), command: undefined, upstreamMessageId: outcome.upstreamMessageId, result: outcome.result });
    await write(rec);
    finished++;
    const { event } = createEvent({
      type: 'chatbridge.command.result', channelId: rec.channelId, provider: 'zapthinker', upstreamKey: `command:${rec.commandId}:sent`, conversationId: cmd.conversationId,
      data: {
        channel: { id: rec.channelId, provider: 'zapthinker' }, conversation: { id: cmd.conversationId },
        command: { commandId: rec.commandId, type: rec.type, status: 'sent', attempts: rec.attempts, upstreamMessageId: outcome.upstreamMessageId },
      },
    });
    lastEvent = events(toKafkaMessage(event)).catch((err) => fail('result event', err));
  };

  /** Runs the command after the previous one of its conversation (the bridge's per-conversation lanes). */
  const enqueue = (rec: RawRecord, cmd: RawCommand) => {
    const lane = `${rec.channelId}\0${cmd.conversationId}`;
    const run = (lanes.get(lane) ?? Promise.resolve())
      .then(() => deliver(rec, cmd))
      .catch((err) => fail(`command ${rec.commandId}`, err))
      .finally(() => {
        if (lanes.get(lane) === run) lanes.delete(lane);
      });
    lanes.set(lane, run);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const channelId = req.method === 'POST' ? COMMANDS_PATH.exec(req.url ?? '')?.[1] : undefined;
    if (!channelId) return answer(res, 404, { error: 'not_found' });
    const text = await readBody(req);
    if (!req.headers.authorization) return answer(res, 401, { error: 'unauthorized' });
    let cmd: RawCommand;
    try {
      cmd = JSON.parse(text) as RawCommand;
    } catch {
      return answer(res, 400, { error: 'invalid_json' });
    }
    const now = new Date().toISOString();
    const rec: RawRecord = { commandId: cmd.commandId, channelId, type: cmd.type, status: 'accepted', attempts: 0, acceptedAt: now, updatedAt: now, command: cmd };
    try {
      await write(rec);
    } catch (err) {
      fail(`accepting ${cmd.commandId}`, err);
      return answer(res, 503, { error: 'ledger_unavailable' });
    }
    answer(res, 202, { commandId: cmd.commandId, status: 'accepted' });
    enqueue(rec, cmd);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      fail('request', err);
      if (!res.headersSent) answer(res, 500, { error: 'internal' });
    });
  });
  // As the bridge's default (api.keepAliveTimeoutMs): the paced client's connections stay open through its run.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    finished: () => finished,
    failed: () => failed,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled(lanes.values());
      await lastEvent;
      await Promise.allSettled([ledgerProducer.disconnect(), eventsProducer.disconnect()]);
    },
  };
}
