import { Kafka as CloudEventsKafka, type KafkaMessage } from 'cloudevents';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { metricValue, startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { KafkaReader, sharedBrokers, uniqueTopic, type ReadRecord } from '../helpers/kafka-reader';

/**
 * ZapThinker simulator → bridge → the real test broker (shared librdkafka mock cluster).
 * Each test uses its own events topic so tests cannot see each other's records.
 */
describe('ZapThinker → CloudEvents → Kafka (e2e)', () => {
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;
  let reader: KafkaReader | undefined;
  let topic: string;

  const channel = (extra: Record<string, unknown> = {}) => ({
    id: 'wa-sales',
    provider: 'zapthinker',
    zapthinker: { url: sim.url, instance: 'sales', apiKey: 'sales-token', connectTimeoutMs: 2000, ...extra },
  });

  async function start(channels: unknown[]): Promise<TestBridge> {
    topic = uniqueTopic('events');
    reader = new KafkaReader(sharedBrokers(), [topic]);
    const started = startTestBridge({ kafka: { brokers: sharedBrokers(), topics: { events: topic }, producer: { batchSize: 200 } }, channels });
    await reader.start();
    bridge = await started;
    return bridge;
  }

  beforeEach(async () => {
    sim = new ZapThinkerSimulator({ instances: { sales: { token: 'sales-token' }, support: { token: 'support-token' } } });
    await sim.start();
    sim.touch('sales');
  });

  afterEach(async () => {
    await bridge?.close();
    await reader?.stop();
    await sim.stop();
    bridge = undefined;
    reader = undefined;
  });

  const upstreamIds = (records: ReadRecord[]) =>
    records
      .filter((r) => r.headers.ce_type?.startsWith('chatbridge.message.'))
      .map((r) => (JSON.parse(r.value ?? '{}') as { message?: { id?: string } }).message?.id);

  it('publishes CloudEvents in binary mode that the cloudevents SDK reads back', async () => {
    await start([channel()]);
    await sim.waitForClients('sales', 1);
    const sent = sim.sendMessage('sales', { remoteJid: '5511999999999@s.whatsapp.net', text: 'Hello', pushName: 'Giovanna', timestamp: 1717604327 });

    const [rec] = await reader!.waitFor('message.received', () => reader!.ofType('chatbridge.message.received').length === 1).then(() => reader!.ofType('chatbridge.message.received'));
    expect(rec.key).toBe('wa-sales:5511999999999@s.whatsapp.net');
    expect(rec.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_source: '/chatbridge/zapthinker/wa-sales',
      ce_type: 'chatbridge.message.received',
      ce_subject: '5511999999999@s.whatsapp.net',
      ce_time: '2024-06-05T16:18:47.000Z',
      ce_partitionkey: 'wa-sales:5511999999999@s.whatsapp.net',
      ce_channelid: 'wa-sales',
      ce_provider: 'zapthinker',
      'content-type': 'application/json',
    });
    expect(rec.headers.ce_id).toMatch(/^[0-9a-f]{32}$/);

    // The SDK takes headers as strings and the value as the raw body, as a kafkajs consumer delivers it.
    const message: KafkaMessage<string> = { key: rec.key!, value: rec.value!, body: rec.value!, headers: rec.headers, timestamp: rec.timestamp };
    const ce = CloudEventsKafka.toEvent(message) as unknown as Record<string, unknown>;
    expect(ce).toMatchObject({
      id: rec.headers.ce_id,
      type: 'chatbridge.message.received',
      source: '/chatbridge/zapthinker/wa-sales',
      subject: '5511999999999@s.whatsapp.net',
      partitionkey: 'wa-sales:5511999999999@s.whatsapp.net',
      channelid: 'wa-sales',
      provider: 'zapthinker',
      datacontenttype: 'application/json',
    });
    const data = ce.data as { message: Record<string, unknown>; upstream: { event: string; payload: { data: unknown } } };
    expect(data.message).toEqual({
      id: sent.key.id,
      direction: 'inbound',
      text: 'Hello',
      sender: { id: '5511999999999@s.whatsapp.net', name: 'Giovanna', role: 'contact' },
    });
    expect(data.upstream.event).toBe('messages.upsert');
    expect(data.upstream.payload.data).toEqual(JSON.parse(JSON.stringify(sent)));

    // The channel's status transitions are published too.
    const states = reader!.ofType('chatbridge.channel.status').map((r) => (JSON.parse(r.value!) as { status: { state: string } }).status.state);
    expect(states).toEqual(expect.arrayContaining(['connecting', 'connected']));
  });

  it('keeps per-conversation order through a burst', async () => {
    await start([channel()]);
    await sim.waitForClients('sales', 1);
    const sent = await sim.burst('sales', 3000, { conversations: 25, perTick: 250 });
    const records = await reader!.waitFor('3000 messages', () => reader!.ofType('chatbridge.message.received').length >= 3000, 30_000);
    const received = records.filter((r) => r.headers.ce_type === 'chatbridge.message.received');
    expect(received).toHaveLength(3000);
    const lastSeq = new Map<string, number>();
    for (const r of received) {
      const text = (JSON.parse(r.value!) as { message: { text: string } }).message.text;
      const seq = Number(text.split('#')[1]);
      expect(seq).toBe((lastSeq.get(r.key!) ?? 0) + 1);
      lastSeq.set(r.key!, seq);
    }
    expect(lastSeq.size).toBe(25);
    expect(new Set(received.map((r) => r.headers.ce_id)).size).toBe(sent.length);
  });

  it('reconnects after the upstream drops the connection, resumes, and suppresses replayed duplicates', async () => {
    const b = await start([channel()]);
    await sim.waitForClients('sales', 1);
    const before = [sim.sendMessage('sales', { remoteJid: '5511911111111', text: 'one' }), sim.sendMessage('sales', { remoteJid: '5511911111111', text: 'two' })];
    await reader!.waitFor('2 messages', () => upstreamIds(reader!.records).length === 2);

    expect(sim.dropConnections('sales')).toBe(1);
    await waitFor('reconnected', async () => (await b.get('/v1/channels/wa-sales')).body && ((await b.get('/v1/channels/wa-sales')).body as { reconnects: number; state: string }).reconnects >= 1 && ((await b.get('/v1/channels/wa-sales')).body as { state: string }).state === 'connected');
    await sim.waitForClients('sales', 1);

    // Evolution/Baileys replay recent messages.upsert after a reconnect (docs/providers.md#zapthinker): same key ids.
    for (const m of before) sim.emit('sales', 'messages.upsert', m);
    const after = sim.sendMessage('sales', { remoteJid: '5511911111111', text: 'three' });
    await reader!.waitFor('third message', () => upstreamIds(reader!.records).includes(after.key.id));
    await new Promise((r) => setTimeout(r, 300));

    expect(upstreamIds(reader!.records)).toEqual([before[0].key.id, before[1].key.id, after.key.id]);
    const metrics = (await b.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_events_deduplicated_total', { channel: 'wa-sales' })).toBe(2);
    expect(metricValue(metrics, 'chatbridge_reconnects_total', { channel: 'wa-sales' })).toBeGreaterThanOrEqual(1);
    const states = reader!.ofType('chatbridge.channel.status').map((r) => (JSON.parse(r.value!) as { status: { state: string } }).status.state);
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
  });

  it('retries "Invalid namespace" after an upstream restart until the namespace exists', async () => {
    const b = await start([channel()]);
    await sim.waitForClients('sales', 1);
    await sim.restart(); // namespaces are lazy again: reconnects get "Invalid namespace"
    await waitFor('invalid namespace seen', async () => ((await b.get('/v1/channels/wa-sales')).body as { lastError?: string }).lastError?.includes('namespace'));
    expect(((await b.get('/v1/channels/wa-sales')).body as { state: string }).state).toBe('reconnecting');
    sim.touch('sales'); // the instance's first event after restart creates it
    await sim.waitForClients('sales', 1, 5000);
    const m = sim.sendMessage('sales', { remoteJid: '5511922222222', text: 'after restart' });
    await reader!.waitFor('message after restart', () => upstreamIds(reader!.records).includes(m.key.id));
    expect(((await b.get('/v1/channels/wa-sales')).body as { state: string }).state).toBe('connected');
  });

  it('survives malformed frames: counted, published as provider events, later events still flow', async () => {
    const b = await start([channel()]);
    await sim.waitForClients('sales', 1);
    sim.emitMalformed('sales', 'null-data');
    sim.emitMalformed('sales', 'no-key');
    sim.emitMalformed('sales', 'string-payload');
    sim.emitMalformed('sales', 'unknown-event');
    const ok = sim.sendMessage('sales', { remoteJid: '5511933333333', text: 'still fine' });
    await reader!.waitFor('valid message after garbage', () => upstreamIds(reader!.records).includes(ok.key.id));
    // Provider events carry the channel as key: another partition, so they may arrive after the message.
    await reader!.waitFor('4 provider events', () => reader!.ofType('chatbridge.provider.event').length >= 4);

    const provider = reader!.ofType('chatbridge.provider.event').map((r) => JSON.parse(r.value!) as { upstream: { event: string; error?: string; payload: unknown } });
    expect(provider).toHaveLength(4);
    expect(provider.filter((p) => p.upstream.error)).toHaveLength(3);
    expect(provider.find((p) => typeof p.upstream.payload === 'string')?.upstream.payload).toBe('this is not an envelope');
    expect(provider.find((p) => !p.upstream.error)?.upstream.event).toBe('chats.archived');
    const metrics = (await b.get('/metrics')).text;
    expect(metricValue(metrics, 'chatbridge_frames_malformed_total', { channel: 'wa-sales' })).toBe(3);
    expect(((await b.get('/v1/channels/wa-sales')).body as { malformedFrames: number }).malformedFrames).toBe(3);
  });

  it('reports auth_failed for a rejected key without a busy loop, while another channel keeps flowing', async () => {
    const b = await start([
      channel({ apiKey: 'wrong-key' }),
      { id: 'wa-support', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'support', apiKey: 'support-token', connectTimeoutMs: 2000 } },
    ]);
    sim.touch('support');
    await sim.waitForClients('support', 1);
    await waitFor('auth_failed', async () => ((await b.get('/v1/channels/wa-sales')).body as { state: string }).state === 'auth_failed');
    const m = sim.sendMessage('support', { remoteJid: '5511944444444', text: 'other channel' });
    await reader!.waitFor('other channel message', () => upstreamIds(reader!.records).includes(m.key.id));

    // authBackoff in the harness: 400 ms growing to 1 s. Over 2 s that is a handful of attempts, not hundreds.
    const t0 = Date.now();
    const before = sim.handshakes.filter((h) => h.apikey === 'wrong-key').length;
    await new Promise((r) => setTimeout(r, 2000));
    const attempts = sim.handshakes.filter((h) => h.apikey === 'wrong-key' && h.at >= t0).length;
    expect(before).toBeGreaterThanOrEqual(1);
    // Full jitter can draw several short delays in a row (~5 attempts expected here); a busy loop would be hundreds.
    expect(attempts).toBeLessThanOrEqual(20);
    const status = reader!.ofType('chatbridge.channel.status').map((r) => JSON.parse(r.value!) as { channel: { id: string }; status: { state: string; reason?: string } });
    const salesStates = status.filter((s) => s.channel.id === 'wa-sales').map((s) => `${s.status.state}:${s.status.reason ?? ''}`);
    // One auth_failed event, not one per retry.
    expect(salesStates).toEqual(['connecting:', 'auth_failed:auth_rejected']);
    expect(((await b.get('/v1/channels/wa-support')).body as { state: string }).state).toBe('connected');
    // The refusal's body (Evolution's allowRequest message) is in the reason the channel gives.
    expect(((await b.get('/v1/channels/wa-sales')).body as { lastError?: string }).lastError).toContain('HTTP 400: Invalid global token');
  });

  const salesStates = () =>
    reader!.ofType('chatbridge.channel.status')
      .map((r) => JSON.parse(r.value!) as { channel: { id: string }; status: { state: string; reason?: string } })
      .filter((s) => s.channel.id === 'wa-sales')
      .map((s) => `${s.status.state}:${s.status.reason ?? ''}`);

  it('a key refused for a moment after a drop (a restarting Evolution) is retried on the normal schedule, never auth_failed', async () => {
    await start([channel()]);
    await sim.waitForClients('sales', 1);
    sim.rejectAuth(true);
    sim.dropConnections('sales');
    // Two refusals in a row, well within the grace's five: the reconnect schedule has full jitter (delays drawn from
    // 0 up to 50, 100, 200 … ms), so a fixed pause here let a fast machine reach the sixth refusal, auth_failed.
    await waitFor('two refused handshakes', () => sim.handshakes.filter((h) => !h.accepted).length >= 2, 5000, 5);
    sim.rejectAuth(false);
    expect(sim.handshakes.filter((h) => !h.accepted).length).toBeLessThanOrEqual(5);
    await sim.waitForClients('sales', 1, 5000);
    const m = sim.sendMessage('sales', { remoteJid: '5511955555555', text: 'after the restart' });
    await reader!.waitFor('message after the refusals', () => upstreamIds(reader!.records).includes(m.key.id));
    await reader!.waitFor('connected status', () => salesStates().at(-1) === 'connected:');
    expect(salesStates()).toEqual(['connecting:', 'connected:', 'reconnecting:disconnected', 'reconnecting:auth_rejected', 'connected:']);
  });

  it('a server whose key lookup fails (allowRequest answers "Authentication error") is not ready, not an auth failure', async () => {
    sim.rejectAuth(true, 'Authentication error');
    const b = await start([channel()]);
    await waitFor('refused twice', () => sim.handshakes.filter((h) => !h.accepted).length >= 2, 5000);
    const channelNow = (await b.get('/v1/channels/wa-sales')).body as { state: string; lastError?: string };
    expect(channelNow.state).toBe('reconnecting');
    expect(channelNow.lastError).toContain('HTTP 400: Authentication error');
    sim.rejectAuth(false);
    await sim.waitForClients('sales', 1, 5000);
    await reader!.waitFor('connected status', () => salesStates().at(-1) === 'connected:');
    expect(salesStates()).toEqual(['connecting:', 'reconnecting:upstream_not_ready', 'connected:']);
  });
});
