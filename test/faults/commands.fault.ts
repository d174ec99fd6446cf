import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { Socket } from 'socket.io-client';
import type { BridgeProcess } from '../helpers/bridge-process';
import { metricValue, TEST_TOKEN } from '../helpers/bridge-harness';
import { connectRawClient, deepCommandJson, rawJson } from '../helpers/deep-json';
import { KafkaReader, sharedBrokers, uniqueTopic } from '../helpers/kafka-reader';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { expectHealthy, report, rssMiB, startBuiltBridge, until } from './harness';

/**
 * Hostile commands against the built bridge (one ZapThinker channel and its simulator, Kafka from the test broker):
 * a command whose `metadata` is nested 5,000 deep on each door is refused with a clear 400 (an ack on socket.io, a
 * dead letter on Kafka: once, never offered again), the process stays up and answers /healthz fast, and the normal
 * command after it reaches the upstream. An upstream that answers a send with 64 MiB is read no further than the 8 MiB
 * bound, and the send, which the upstream may have acted on, is never repeated. One that takes a send and never answers
 * (a second channel, `wa-stall`, with a short `commandTimeoutMs`) costs that command alone: it ends failed, the upstream
 * may have acted, and is never repeated.
 */
describe('fault rows: commands', () => {
  const LEVELS = 5000;
  const RSS_BOUND_MIB = 300;
  const CONTACT = '5511987654321';
  const DEPTH_DETAIL = 'metadata: nested deeper than 32 levels (commands.maxDepth; the command itself is level 1)';
  /** `wa-stall`'s bound on an upstream call and the wait for an echo after an ambiguous one, short for the row (ms). */
  const STALL_TIMEOUT_MS = 1000;
  const ECHO_TIMEOUT_MS = 1500;
  const topics = { events: uniqueTopic('events'), commands: uniqueTopic('commands'), deadLetter: uniqueTopic('dlq'), commandLedger: uniqueTopic('ledger') };
  let zap: ZapThinkerSimulator;
  let bridge: BridgeProcess;
  let reader: KafkaReader;
  let socket: Socket | undefined;
  let producer: Producer | undefined;

  beforeAll(async () => {
    zap = new ZapThinkerSimulator({ instances: { sales: { token: 'zap-token-0123' }, support: { token: 'zap-token-4567' } } });
    await zap.start();
    zap.touch('sales');
    zap.touch('support');
    reader = new KafkaReader(sharedBrokers(), [topics.deadLetter]);
    await reader.start();
    bridge = await startBuiltBridge('faults-commands', {
      kafka: { brokers: sharedBrokers(), topics, consumer: { commandGroup: `faults-commands-${randomUUID()}`, maxWaitTimeMs: 100, sessionTimeoutMs: 6000 } },
      api: { rateLimit: { perSecond: 1000, burst: 1000 } },
      commands: { echoTimeoutMs: ECHO_TIMEOUT_MS },
      channels: [
        { id: 'wa', provider: 'zapthinker', zapthinker: { url: zap.url.replace(/^http/, 'ws'), instance: 'sales', apiKey: 'zap-token-0123' } },
        { id: 'wa-stall', provider: 'zapthinker', zapthinker: { url: zap.url.replace(/^http/, 'ws'), instance: 'support', apiKey: 'zap-token-4567', commandTimeoutMs: STALL_TIMEOUT_MS } },
      ],
    });
    const connected = async (id: string) => ((await bridge.request('GET', `/v1/channels/${id}`)).body as { state?: string }).state === 'connected';
    await until('wa and wa-stall connected', async () => (await connected('wa')) && (await connected('wa-stall')), 30_000);
  }, 90_000);

  afterAll(async () => {
    socket?.close();
    await producer?.disconnect();
    await reader?.stop();
    await bridge?.kill();
    await zap?.stop();
  });

  const send = (text: string) => ({ commandId: randomUUID(), type: 'message.send', conversationId: CONTACT, text });
  const upstreamTexts = () => zap.requests.filter((r) => r.path === '/message/sendText/sales').map((r) => (r.body as { text: string }).text);
  /** Waits for `text` to reach the simulator; answers how long it took (ms). */
  const reachesUpstream = async (text: string, since: number) => {
    await until(`"${text}" at the upstream`, () => upstreamTexts().includes(text), 20_000);
    return Math.round(performance.now() - since);
  };
  const metrics = async () => (await fetch(`${bridge.url}/metrics`)).text();

  it('HTTP: a command nested 5,000 deep is a 400 naming the field and the limit; the next one is sent', async () => {
    const t0 = performance.now();
    const res = await fetch(`${bridge.url}/v1/channels/wa/commands`, {
      method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: deepCommandJson(send('deep http'), LEVELS),
    });
    const answerMs = Math.round(performance.now() - t0);
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 400, body: { statusCode: 400, error: 'Bad Request', message: 'invalid command', details: [DEPTH_DETAIL] } });
    const healthzMs = await expectHealthy(bridge);

    const t1 = performance.now();
    expect((await bridge.request('POST', '/v1/channels/wa/commands', send('next after http'))).status).toBe(202);
    const nextMs = await reachesUpstream('next after http', t1);
    expect(upstreamTexts()).not.toContain('deep http');
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('commands/http-deep-5000', { status: res.status, answerMs, healthzMs: Math.round(healthzMs), nextToUpstreamMs: nextMs, rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB });
  });

  it('socket.io: a command nested 5,000 deep is acked with a 400 naming the field and the limit; the next one is sent', async () => {
    socket = await connectRawClient(bridge.url, TEST_TOKEN);
    const t0 = performance.now();
    const ack = await socket.timeout(5000).emitWithAck('command', rawJson(deepCommandJson({ ...send('deep socket.io'), channelId: 'wa' }, LEVELS)));
    const answerMs = Math.round(performance.now() - t0);
    expect(ack).toEqual({ error: { statusCode: 400, error: 'Bad Request', message: 'invalid command', details: [DEPTH_DETAIL] } });
    const healthzMs = await expectHealthy(bridge);

    const t1 = performance.now();
    expect(await socket.timeout(5000).emitWithAck('command', { ...send('next after socket.io'), channelId: 'wa' })).toMatchObject({ status: 'accepted' });
    const nextMs = await reachesUpstream('next after socket.io', t1);
    expect(socket.connected).toBe(true);
    expect(upstreamTexts()).not.toContain('deep socket.io');
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('commands/socket.io-deep-5000', { ack: 400, answerMs, healthzMs: Math.round(healthzMs), nextToUpstreamMs: nextMs, connected: socket.connected, rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB });
  });

  it('Kafka: a record nested 5,000 deep is dead-lettered once (400, original value kept) and the record behind it on its partition runs', async () => {
    producer = new Kafka({ clientId: 'faults-commands', brokers: sharedBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    const deep = deepCommandJson(send('deep kafka'), LEVELS);
    const t0 = performance.now();
    // One key, one partition: the normal record is read only after the deep one is finished.
    await producer.send({ topic: topics.commands, acks: -1, messages: [{ key: 'wa', value: deep }, { key: 'wa', value: JSON.stringify(send('next after kafka')) }] });
    const nextMs = await reachesUpstream('next after kafka', t0);
    const healthzMs = await expectHealthy(bridge);

    const dead = await reader.waitFor('the dead letter', (r) => r.length >= 1);
    expect(dead).toHaveLength(1);
    expect(dead[0].headers).toMatchObject({ dlq_reason: 'invalid_command', dlq_origin: 'kafka-commands', dlq_status: '400', dlq_error: `invalid_command: invalid command (${DEPTH_DETAIL})` });
    expect(dead[0].value).toBe(deep);
    const text = await metrics();
    const retried = metricValue(text, 'chatbridge_kafka_commands_total', { outcome: 'retried' });
    expect(retried).toBe(0);
    expect(metricValue(text, 'chatbridge_kafka_commands_total', { outcome: 'invalid' })).toBe(1);
    expect(metricValue(text, 'chatbridge_refused_total', { origin: 'command', reason: 'too_deep' })).toBe(3);
    expect(upstreamTexts()).not.toContain('deep kafka');
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('commands/kafka-deep-5000', { deadLettered: dead.length, dlqStatus: dead[0].headers.dlq_status, retried, nextToUpstreamMs: nextMs, healthzMs: Math.round(healthzMs), rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB });
  });
  it('an upstream answering a send with 64 MiB: read no further than 8 MiB, the send never repeated, memory flat; the next one is sent', async () => {
    const ANSWER_BYTES = 64 * 1024 * 1024;
    const big = send('answered with 64 MiB');
    zap.oversizeNextSends(1, ANSWER_BYTES);
    const t0 = performance.now();
    expect((await bridge.request('POST', '/v1/channels/wa/commands', big)).status).toBe(202);
    // The upstream acted (its echo follows), so the unread answer is ambiguous, not retried: the echo settles it.
    const view = await until('the command settled', async () => {
      const v = (await bridge.request('GET', `/v1/commands/${big.commandId}`)).body as { status: string };
      return v.status === 'sent' || v.status === 'failed' ? v : undefined;
    }, 30_000);
    const settledMs = Math.round(performance.now() - t0);
    expect(view.status).toBe('sent');
    await until('the oversized answer logged', () => bridge.logs.some((l) => JSON.stringify(l).includes('answer larger than 8388608 bytes, not read')));
    // The client closed the connection soon after 8 MiB: what the simulator wrote is that plus the socket buffers.
    const [written] = await until('the answer closed', () => zap.oversizedWritten.length > 0 && zap.oversizedWritten);
    expect(written).toBeLessThan(ANSWER_BYTES / 2);
    const sends = upstreamTexts().filter((t) => t === big.text).length;
    expect(sends).toBe(1);
    const healthzMs = await expectHealthy(bridge);

    const t1 = performance.now();
    expect((await bridge.request('POST', '/v1/channels/wa/commands', send('next after the big answer'))).status).toBe(202);
    const nextMs = await reachesUpstream('next after the big answer', t1);
    const rss = rssMiB(bridge.pid);
    expect(rss).toBeLessThan(RSS_BOUND_MIB);
    report('commands/upstream-answer-64MiB', { status: view.status, sends, answerWrittenMiB: Math.round(written / 1048576), settledMs, healthzMs: Math.round(healthzMs), nextToUpstreamMs: nextMs, rssMiB: rss, rssBoundMiB: RSS_BOUND_MIB });
  });

  it('an upstream that takes a send and never answers: the call ends at commandTimeoutMs, the command failed (may have acted), never repeated; the next one is sent', async () => {
    const supportTexts = () => zap.requests.filter((r) => r.path === '/message/sendText/support').map((r) => (r.body as { text: string }).text);
    const stalled = send('never answered');
    zap.stallNextSends(1);
    const t0 = performance.now();
    expect((await bridge.request('POST', '/v1/channels/wa-stall/commands', stalled)).status).toBe(202);
    await until('the stalled send at the upstream', () => supportTexts().includes(stalled.text));
    // While the call hangs the process serves others.
    const hungHealthzMs = await expectHealthy(bridge);
    const view = await until('the stalled command ended', async () => {
      const v = (await bridge.request('GET', `/v1/commands/${stalled.commandId}`)).body as { status: string; attempts: number; error?: { code: string; mayHaveActed: boolean; message: string } };
      return v.status === 'sent' || v.status === 'failed' ? v : undefined;
    }, 20_000);
    const endedMs = Math.round(performance.now() - t0);
    // The upstream may have acted and sent no echo: failed, never sent again (docs/commands.md).
    expect(view).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'ambiguous_no_echo', mayHaveActed: true } });
    expect(view.error?.message).toContain('no answer in time');
    // The channel's own commandTimeoutMs bounds the call (ZapThinker's default, 15 s, would end it far later).
    expect(endedMs).toBeGreaterThanOrEqual(STALL_TIMEOUT_MS + ECHO_TIMEOUT_MS - 100);
    expect(endedMs).toBeLessThan(STALL_TIMEOUT_MS + ECHO_TIMEOUT_MS + 5000);
    const text = await metrics();
    const counted = metricValue(text, 'chatbridge_commands_finished_total', { channel: 'wa-stall', outcome: 'failed', code: 'ambiguous_no_echo' });
    expect(counted).toBe(1);
    const healthzMs = await expectHealthy(bridge);

    const t1 = performance.now();
    const next = send('next after the stall');
    expect((await bridge.request('POST', '/v1/channels/wa-stall/commands', next)).status).toBe(202);
    await until('the next one at the upstream', () => supportTexts().includes(next.text), 20_000);
    const nextView = await until('the next one sent', async () => {
      const v = (await bridge.request('GET', `/v1/commands/${next.commandId}`)).body as { status: string };
      return v.status === 'sent' || v.status === 'failed' ? v : undefined;
    }, 20_000);
    const nextMs = Math.round(performance.now() - t1);
    expect(nextView.status).toBe('sent');
    const sends = supportTexts().filter((t) => t === stalled.text).length;
    expect(sends).toBe(1);
    report('commands/upstream-never-answers', { status: view.status, code: view.error?.code ?? '', mayHaveActed: view.error?.mayHaveActed ?? false, sends, endedMs, boundMs: STALL_TIMEOUT_MS + ECHO_TIMEOUT_MS, counted, hungHealthzMs: Math.round(hungHealthzMs), healthzMs: Math.round(healthzMs), nextSentMs: nextMs });
  });
});
