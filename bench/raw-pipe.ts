/**
 * The saturated phase's honest baseline: a minimal hand-written socket → Kafka pipe doing the bridge's work without
 * its features. A socket.io client takes the simulator's frames, each frame goes through the product's ZapThinker
 * mapper (the same event, built the same way) and the product's record builder (`toKafkaMessage`, so both sides write
 * byte-identical records), and one kafkajs produce request at a time carries up to 500 queued records: idempotent
 * producer, acks -1, the bridge's default compression. What it leaves out is what the bridge adds: input limits,
 * dedupe, metrics, queue bounds, dead letters, durable receipts, supervision.
 */
import { CompressionTypes, Kafka, logLevel, type Message } from 'kafkajs';
import { Histogram, Registry } from 'prom-client';
import { io } from 'socket.io-client';
import { mapZapThinker } from '../src/connectors/zapthinker/zapthinker.mapper';
import { toKafkaMessage } from '../src/sinks/kafka/kafka.record';
import { javaCompatiblePartitioner } from '../src/kafka/partitioner';
import { histogramQuantiles, type Result } from './stats';

/** Measures `n` events after `warmup` unmeasured ones. `burst(n)` makes the simulator send `n` messages; resolves when it has sent them. */
export async function rawPipe(simUrl: string, brokers: string[], { n, warmup, batch, buckets }: { n: number; warmup: number; batch: number; buckets: number[] }, burst: (n: number) => Promise<void>): Promise<Result> {
  const kafka = new Kafka({ clientId: 'bench-raw-pipe', brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: javaCompatiblePartitioner });
  await producer.connect();
  const registry = new Registry();
  const h = new Histogram({ name: 'raw_pipe_latency', help: 'raw pipe', buckets, registers: [registry] });
  const queue: Array<{ at: number; rec: Message }> = [];
  let wake: (() => void) | undefined;
  const socket = io(`${simUrl}/bench`, { transports: ['websocket'], forceNew: true, reconnection: false, query: { apikey: 'bench-key' } });
  socket.onAny((event: string, payload: unknown) => {
    const at = performance.now();
    for (const m of mapZapThinker({ event, payload }, { channelId: 'bench', provider: 'zapthinker', receivedAt: new Date() })) queue.push({ at, rec: toKafkaMessage(m.event) });
    wake?.();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  let acked = 0;
  const until = async (target: number) => {
    while (acked < target) {
      if (!queue.length) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      const taken = queue.splice(0, batch);
      await producer.send({ topic: 'bench-raw', acks: -1, compression: CompressionTypes.GZIP, messages: taken.map((t) => t.rec) });
      const now = performance.now();
      for (const t of taken) h.observe((now - t.at) / 1000);
      acked += taken.length;
    }
  };
  try {
    await Promise.all([burst(warmup), until(warmup)]);
    h.reset();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all([burst(n), until(warmup + n)]);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const q = await histogramQuantiles(h);
    return { label: 'raw pipe: socket -> record -> Kafka ack', eventsPerSec: n / seconds, p50ms: q.p50, p99ms: q.p99, cpuUsPerEvent: (cpu.user + cpu.system) / n };
  } finally {
    socket.disconnect();
    await producer.disconnect();
  }
}
