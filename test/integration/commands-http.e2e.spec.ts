import { randomUUID } from 'node:crypto';
import { WatchersSimulator } from '../simulators/watchers/watchers.simulator';
import { metricValue, startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';

/**
 * The HTTP door of the command gateway against the Watchers simulator (embedded mode: events on stdout):
 * exact wire calls, idempotency, every refusal with its body, safe retry, holding while reconnecting, echoes.
 */
describe('commands over HTTP (e2e)', () => {
  const ROOM = '144444';
  const BOT = 'bot-1';
  let sim: WatchersSimulator;
  let bridge: TestBridge | undefined;

  const channel = (extra: Record<string, unknown> = {}, mode = 'socket') => ({
    id: 'bot-eu', provider: 'watchers', mode,
    ...(mode === 'webhook' ? { inbound: { token: 'inbound-token-0123456789' } } : {}),
    watchers: { url: sim.url, bearer: sim.bearerFor(BOT), apiKey: sim.apiKey, userId: BOT, rooms: [ROOM], connectTimeoutMs: 2000, ackTimeoutMs: 400, ...extra },
  });

  async function start(raw: Record<string, unknown> = {}, channelExtra: Record<string, unknown> = {}, mode = 'socket'): Promise<TestBridge> {
    bridge = await startTestBridge({ channels: [channel(channelExtra, mode)], commands: { retry: { initialDelayMs: 50, maxDelayMs: 200 } }, ...raw });
    if (mode === 'socket') await sim.waitUntil('listening', () => sim.listeners(ROOM) === 1);
    return bridge;
  }

  async function post(body: unknown, opts: { channel?: string; token?: string | null; raw?: string } = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const token = opts.token === undefined ? TEST_TOKEN : opts.token;
    const res = await fetch(`${bridge!.url}/v1/channels/${opts.channel ?? 'bot-eu'}/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: opts.raw ?? JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  }

  const send = (text: string, extra: Record<string, unknown> = {}) => ({ commandId: randomUUID(), type: 'message.send', conversationId: ROOM, text, ...extra });
  const state = async (id: string) => (await bridge!.get(`/v1/commands/${id}`)).body as Record<string, unknown> & { status: string; attempts: number; error?: { code: string; mayHaveActed: boolean } };
  const ended = (id: string) => waitFor(`command ${id} to end`, async () => ['sent', 'failed'].includes((await state(id)).status), 8000);
  const metric = async (name: string, labels: Record<string, string>) => metricValue((await bridge!.get('/metrics')).text, name, labels);
  const sends = () => sim.emitsOf('external/send').map((e) => e.payload);
  const results = () => bridge!.stdoutEvents().filter((e) => e.type === 'chatbridge.command.result') as Array<{ data: { command: Record<string, unknown> } }>;

  beforeEach(async () => {
    sim = new WatchersSimulator({ bots: [BOT] });
    await sim.start();
  });

  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    await sim.stop();
  });

  it('accepts with 202, sends the exact external/send frame once, and reports sent over GET and as a command.result event', async () => {
    await start();
    const cmd = send('Hi there');
    const res = await post(cmd);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ commandId: cmd.commandId, channelId: 'bot-eu', status: 'accepted', duplicate: false });
    await ended(cmd.commandId);
    expect(await state(cmd.commandId)).toMatchObject({ commandId: cmd.commandId, channelId: 'bot-eu', type: 'message.send', status: 'sent', attempts: 1, conversationId: ROOM });
    expect(sends()).toEqual([{ roomId: ROOM, apiKey: sim.apiKey, userId: BOT, text: 'Hi there' }]);
    await waitFor('the command.result event', () => results().length === 1);
    const [result] = results();
    expect(result).toMatchObject({ specversion: '1.0', channelid: 'bot-eu', provider: 'watchers', subject: ROOM, partitionkey: `bot-eu:${ROOM}` });
    expect(result.data.command).toEqual({ commandId: cmd.commandId, type: 'message.send', status: 'sent', attempts: 1 });
    expect(await metric('chatbridge_commands_total', { provider: 'watchers', type: 'message.send', status: 'sent' })).toBe(1);
    expect(await metric('chatbridge_commands_finished_total', { channel: 'bot-eu', type: 'message.send', outcome: 'sent', code: 'none' })).toBe(1);
    expect(await metric('chatbridge_command_attempts_total', { provider: 'watchers', type: 'message.send' })).toBe(1);
  });

  it('answers a repeated commandId from the ledger without sending again, and 409 when the body differs', async () => {
    await start();
    const cmd = send('only once');
    expect((await post(cmd)).status).toBe(202);
    await ended(cmd.commandId);
    // Key order does not matter: the fingerprint is over canonical JSON.
    const again = await post({ text: cmd.text, conversationId: ROOM, type: 'message.send', commandId: cmd.commandId });
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ commandId: cmd.commandId, channelId: 'bot-eu', status: 'sent', duplicate: true });
    const changed = await post({ ...cmd, text: 'something else' });
    expect(changed.status).toBe(409);
    expect(changed.body).toMatchObject({ statusCode: 409, error: 'Conflict' });
    expect(changed.body.message).toContain(`commandId "${cmd.commandId}" was already used for a different command`);
    expect(sends()).toHaveLength(1);
    expect(await metric('chatbridge_commands_duplicate_total', { door: 'http' })).toBe(1);
  });

  it('refuses bad commands with 400 listing every problem, 404, 422 naming the provider, 413, 401 — and sends nothing', async () => {
    await start({ api: { maxBodyBytes: 2048 } });
    const bad = await post({ commandId: 'c 1', conversationId: 7, text: 'x', colour: 'red' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: 'invalid command' });
    expect(bad.body.details).toEqual(expect.arrayContaining([
      expect.stringMatching(/^commandId: must be 1-128 characters/), 'type: required', 'conversationId: must be a string', 'colour: unknown key',
    ]));
    expect((await post([1, 2])).body).toMatchObject({ statusCode: 400, details: ['(body): must be a JSON object'] });
    const notJson = await post(undefined, { raw: '{"commandId": ' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.message).toMatch(/^request body is not valid JSON/);

    const unknown = await post(send('x'), { channel: 'nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toBe('no channel with id "nope"');

    const unsupported = await post({ commandId: randomUUID(), type: 'typing', conversationId: ROOM });
    expect(unsupported.status).toBe(422);
    expect(unsupported.body.message).toBe('provider watchers (channel bot-eu) does not support command type "typing"; it supports message.send, room.listen');

    const big = await post(send('x'.repeat(4000)));
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ statusCode: 413, error: 'Payload Too Large', message: 'request body larger than the API limit of 2048 bytes (api.maxBodyBytes)' });

    const noToken = await post(send('x'), { token: null });
    expect(noToken.status).toBe(401);
    expect(noToken.body.message).toBe('missing bearer token: send Authorization: Bearer <token>');
    expect((await post(send('x'), { token: 'wrong-token-0123456789' })).body).toMatchObject({ statusCode: 401, message: 'invalid bearer token' });
    expect(sends()).toEqual([]);
    expect(await metric('chatbridge_commands_refused_total', { door: 'http', code: 'invalid_command' })).toBe(2);
  });

  it('refuses every call when no API token is configured, saying how to configure one', async () => {
    bridge = await startTestBridge({ channels: [channel()] }, { CHATBRIDGE_API_TOKENS: '' });
    const res = await post(send('x'));
    expect(res.status).toBe(401);
    expect(res.body.message).toBe('no API tokens are configured: set CHATBRIDGE_API_TOKENS (comma-separated) to enable the API');
  });

  it('rate-limits per token with 429 and Retry-After; another token is not affected', async () => {
    bridge = await startTestBridge({ channels: [channel()], api: { rateLimit: { perSecond: 1, burst: 2 } } }, { CHATBRIDGE_API_TOKENS: `${TEST_TOKEN},other-token-0123456789` });
    expect((await post(send('a'))).status).toBe(202);
    expect((await post(send('b'))).status).toBe(202);
    const limited = await post(send('c'));
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
    expect(limited.body.message).toMatch(/^rate limit of this API token exceeded \(api\.rateLimit\); retry in \d+ ms$/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await post(send('d'), { token: 'other-token-0123456789' })).status).toBe(202);
  });

  it('fails a refusal the upstream gave before acting at once (no retry), with the reason', async () => {
    await start();
    sim.failNextSends(1, 'Room is closed');
    const cmd = send('refused');
    await post(cmd);
    await ended(cmd.commandId);
    expect(await state(cmd.commandId)).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'upstream_rejected', message: 'external/send refused: Room is closed', mayHaveActed: false } });
    await waitFor('the command.result event', () => results().length === 1);
    expect(results()[0].data.command).toMatchObject({ status: 'failed', errorCode: 'upstream_rejected' });
    expect(await metric('chatbridge_commands_finished_total', { channel: 'bot-eu', type: 'message.send', outcome: 'failed', code: 'upstream_rejected' })).toBe(1);
  });

  it('retries what the upstream surely did not act on (REST 503) and ends sent', async () => {
    await start({}, { restUrl: sim.url }, 'webhook');
    sim.failNextRestSends(2, 503);
    const cmd = send('after two 503s');
    await post(cmd);
    await ended(cmd.commandId);
    expect(await state(cmd.commandId)).toMatchObject({ status: 'sent', attempts: 3 });
    const rest = sim.requests.filter((r) => r.path === '/api/bot/sendMessage');
    expect(rest).toHaveLength(3);
    expect(rest.map((r) => r.body)).toEqual(Array(3).fill({ roomId: ROOM, text: 'after two 503s' }));
  });

  it('resolves a send whose ack never came through the bot\'s echo in the room: sent, once, never re-sent', async () => {
    await start({ commands: { echoTimeoutMs: 3000 } });
    sim.withholdNextSendAcks(1);
    const cmd = send('did it go?');
    await post(cmd);
    await ended(cmd.commandId);
    const s = await state(cmd.commandId);
    expect(s).toMatchObject({ status: 'sent', attempts: 1 });
    expect(s.upstreamMessageId).toEqual(expect.any(String));
    expect(sends()).toHaveLength(1);
    // A later command in the conversation goes normally.
    const next = send('next one');
    await post(next);
    await ended(next.commandId);
    expect((await state(next.commandId)).status).toBe('sent');
    expect(sends()).toHaveLength(2);
  });

  it('never sends again on a guess: a send whose ack never came and whose echo never comes ends failed ambiguous_no_echo', async () => {
    await start({ commands: { echoTimeoutMs: 1000 } });
    sim.loseNextSends(1);
    const cmd = send('lost on the way back?');
    expect((await post(cmd)).status).toBe(202);
    await ended(cmd.commandId);
    expect(await state(cmd.commandId)).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'ambiguous_no_echo', mayHaveActed: true } });
    expect(sends().filter((p) => (p as { text?: string }).text === cmd.text)).toHaveLength(1); // sent once, not retried
    await waitFor('the failed command.result', () => results().some((r) => r.data.command.commandId === cmd.commandId && r.data.command.status === 'failed'), 5000);
  });

  it('holds a command while the channel reconnects and delivers it after the reconnect', async () => {
    await start();
    sim.rejectAuth(true);
    sim.dropConnections();
    await waitFor('the channel to lose its connection', async () => ((await bridge!.get('/v1/channels/bot-eu')).body as { state: string }).state !== 'connected');
    const cmd = send('held');
    expect((await post(cmd)).status).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    expect((await state(cmd.commandId)).status).toBe('accepted');
    expect(sends()).toEqual([]);
    sim.rejectAuth(false);
    await ended(cmd.commandId);
    expect(await state(cmd.commandId)).toMatchObject({ status: 'sent', attempts: 1 });
    expect(sends()).toEqual([{ roomId: ROOM, apiKey: sim.apiKey, userId: BOT, text: 'held' }]);
  });

  it('fails a held command at commands.deadlineMs, saying it was not sent', async () => {
    await start({ commands: { deadlineMs: 800 } });
    sim.rejectAuth(true);
    sim.dropConnections();
    await waitFor('the channel to lose its connection', async () => ((await bridge!.get('/v1/channels/bot-eu')).body as { state: string }).state !== 'connected');
    const cmd = send('too late');
    await post(cmd);
    await ended(cmd.commandId);
    const s = await state(cmd.commandId);
    expect(s).toMatchObject({ status: 'failed', attempts: 0, error: { code: 'deadline_exceeded', mayHaveActed: false } });
    expect(sends()).toEqual([]);
  });

  it('keeps the order of one conversation\'s commands', async () => {
    await start();
    const cmds = Array.from({ length: 10 }, (_, i) => send(`m${i}`));
    for (const c of cmds) expect((await post(c)).status).toBe(202);
    await waitFor('10 sends', () => sends().length === 10);
    expect(sends().map((p) => (p as { text: string }).text)).toEqual(cmds.map((c) => c.text));
  });
});
