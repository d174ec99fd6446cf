import type { CommandError } from '../../src/common/errors';
import type { UpstreamCommand } from '../../src/connectors/connector.interface';
import { zapthinkerProvider } from '../../src/connectors/zapthinker/zapthinker.provider';
import type { AnyCanonicalEvent } from '../../src/envelope/envelope';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBridge, waitFor, type TestBridge } from '../helpers/bridge-harness';

/**
 * ZapThinker commands: `message.send` → Evolution's REST `POST /message/sendText/<instance>` against the simulator,
 * in socket and webhook mode; the `send.message` echo on the socket settles an ambiguous send. Embedded mode (no Kafka).
 */
describe('ZapThinker commands → Evolution REST (e2e)', () => {
  const TOKEN = 'sales-token';
  const CONTACT = '5511999999999';
  const JID = `${CONTACT}@s.whatsapp.net`;
  let sim: ZapThinkerSimulator;
  let bridge: TestBridge | undefined;

  /** Socket mode over a ws:// base, as users configure the socket: REST must go to http:// on the same host. */
  const socketChannel = (id = 'wa-sales', extra: Record<string, unknown> = {}) => ({
    id, provider: 'zapthinker', zapthinker: { url: sim.url.replace(/^http/, 'ws'), instance: 'sales', apiKey: TOKEN, connectTimeoutMs: 2000, commandTimeoutMs: 1500, ...extra },
  });
  const webhookChannel = (id: string, apiKey = TOKEN) => ({
    id, provider: 'zapthinker', mode: 'webhook', inbound: { token: 'inbound-token-0123456789' }, zapthinker: { url: sim.url, instance: 'sales', apiKey },
  });

  const run = (channelId: string, fields: Record<string, unknown>) => {
    const command: UpstreamCommand = { commandId: `c-${Math.random()}`, type: 'message.send', ...fields };
    return { command, done: bridge!.bridge.router.execute(channelId, command) };
  };
  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a CommandError'); }, (e: unknown) => e as CommandError);
  const sendTexts = () => sim.requests.filter((r) => r.path === '/message/sendText/sales');
  const echoOf = (text: string) =>
    waitFor(`send.message echo of "${text}"`, () =>
      bridge!.stdoutEvents().find((e) => e.type === 'chatbridge.message.sent' && (e.data as { message: { text?: string } }).message.text === text) as AnyCanonicalEvent | undefined);
  const isEcho = (command: UpstreamCommand, event: AnyCanonicalEvent) => (zapthinkerProvider.isEcho as NonNullable<typeof zapthinkerProvider.isEcho>)(command, event);

  beforeEach(async () => {
    sim = new ZapThinkerSimulator({ instances: { sales: { token: TOKEN } } });
    await sim.start();
    sim.touch('sales');
  });

  afterEach(async () => {
    await bridge?.close();
    await sim.stop();
    bridge = undefined;
  });

  it('sends the exact sendText request and resolves with the WAMessage key; the echo matches the command', async () => {
    bridge = await startTestBridge({ channels: [socketChannel()] });
    await sim.waitForClients('sales', 1);

    const { command, done } = run('wa-sales', { conversationId: CONTACT, text: 'Olá! Pedido confirmado.', metadata: { crm: 7 }, mentioned: ['x'] });
    const outcome = await done;
    const [req] = sendTexts();
    expect(req).toMatchObject({ method: 'POST', body: { number: CONTACT, text: 'Olá! Pedido confirmado.' } });
    expect(Object.keys(req.body as object).sort()).toEqual(['number', 'text']);
    expect(req.headers).toMatchObject({ apikey: TOKEN, 'content-type': 'application/json' });
    expect(outcome).toMatchObject({ upstreamMessageId: expect.stringMatching(/^BAE5[0-9A-F]{12}$/), conversationId: JID, result: { status: 'PENDING', key: { fromMe: true } } });

    const echo = await echoOf('Olá! Pedido confirmado.');
    expect(echo).toMatchObject({ channelid: 'wa-sales', subject: JID, data: { message: { id: outcome.upstreamMessageId, direction: 'outbound' } } });
    expect(isEcho(command, echo)).toBe(true);
    expect(isEcho({ ...command, text: 'something else' }, echo)).toBe(false);

    // Optional delay and linkPreview pass through; a group JID is sent as it is.
    await run('wa-sales', { conversationId: '120363025246125888@g.us', text: 'team update', delay: 20, linkPreview: false }).done;
    expect(sendTexts()[1].body).toEqual({ number: '120363025246125888@g.us', text: 'team update', delay: 20, linkPreview: false });
    expect(sim.requests).toHaveLength(2);
  });

  it('classifies failures: 503 retriable and not sent, not on WhatsApp and a bad key refused, invalid fields never sent', async () => {
    bridge = await startTestBridge({ channels: [socketChannel(), webhookChannel('wa-badkey', 'wrong-key')] });
    await sim.waitForClients('sales', 1);

    sim.failNextSends(1, 503);
    expect(await failure(run('wa-sales', { conversationId: CONTACT, text: 'busy' }).done)).toMatchObject({ code: 'upstream_unavailable', retriable: true, sent: false });

    sim.markNotOnWhatsApp('5511900001111');
    const notOnWa = await failure(run('wa-sales', { conversationId: '5511900001111', text: 'hello?' }).done);
    expect(notOnWa).toMatchObject({ code: 'upstream_rejected', retriable: false, sent: false });
    expect(notOnWa.message).toMatch(/HTTP 400.*"exists":false/);

    const badKey = await failure(run('wa-badkey', { conversationId: CONTACT, text: 'x' }).done);
    expect(badKey).toMatchObject({ code: 'auth_rejected', retriable: false, sent: false });
    expect(sendTexts().at(-1)?.headers.apikey).toBe('wrong-key');

    const before = sim.requests.length;
    expect(await failure(run('wa-sales', { text: 'no chat' }).done)).toMatchObject({ code: 'invalid_command', sent: false });
    expect(await failure(run('wa-sales', { conversationId: CONTACT, text: ' ' }).done)).toMatchObject({ code: 'invalid_command', sent: false });
    expect(await failure(run('wa-sales', { conversationId: CONTACT, text: 'x', delay: 'soon' }).done)).toMatchObject({ code: 'invalid_command', sent: false });
    const typing = bridge.bridge.router.execute('wa-sales', { commandId: 'c-typing', type: 'typing', conversationId: CONTACT });
    expect(await failure(typing)).toMatchObject({ code: 'unsupported_command', message: expect.stringContaining('zapthinker') });
    expect(sim.requests).toHaveLength(before);

    // None of the refused sends acted upstream: no echo was published for them.
    await run('wa-sales', { conversationId: CONTACT, text: 'after the failures' }).done;
    await echoOf('after the failures');
    const echoed = bridge.stdoutEvents().filter((e) => e.type === 'chatbridge.message.sent').map((e) => (e.data as { message: { text?: string } }).message.text);
    expect(echoed).toEqual(['after the failures']);
  });

  it('a send that gets no answer is ambiguous (sent, timeout), and its echo still arrives to settle it', async () => {
    bridge = await startTestBridge({ channels: [socketChannel('wa-sales', { commandTimeoutMs: 300 })] });
    await sim.waitForClients('sales', 1);

    sim.hangNextSends(1);
    const { command, done } = run('wa-sales', { conversationId: CONTACT, text: 'did it go?' });
    expect(await failure(done)).toMatchObject({ code: 'timeout', sent: true, retriable: false });
    expect(sendTexts()).toHaveLength(1);
    expect(isEcho(command, await echoOf('did it go?'))).toBe(true);

    await expect(run('wa-sales', { conversationId: CONTACT, text: 'next one' }).done).resolves.toMatchObject({ conversationId: JID });
  });

  it('through the gateway: a timeout after the send ends sent by its echo, sent once; a 503 is retried to sent', async () => {
    bridge = await startTestBridge({ channels: [socketChannel('wa-sales', { commandTimeoutMs: 300 })], commands: { retry: { initialDelayMs: 50, maxDelayMs: 200 } } });
    await sim.waitForClients('sales', 1);
    const commands = bridge.bridge.commands;
    const ended = (id: string) => waitFor(`command ${id} to end`, () => {
      const view = commands.get(id);
      return view && ['sent', 'failed'].includes(view.status) ? view : undefined;
    }, 8000);

    sim.hangNextSends(1);
    await commands.submit({ commandId: 'zt-hang-1', type: 'message.send', conversationId: CONTACT, text: 'hung but sent' }, { door: 'http', channelId: 'wa-sales' });
    const hung = await ended('zt-hang-1');
    const echo = await echoOf('hung but sent');
    expect(hung).toMatchObject({ status: 'sent', attempts: 1, upstreamMessageId: (echo.data as { message: { id: string } }).message.id });
    expect(hung.error).toBeUndefined();
    expect(sendTexts().map((r) => r.body)).toEqual([{ number: CONTACT, text: 'hung but sent' }]);

    sim.failNextSends(1, 503);
    await commands.submit({ commandId: 'zt-busy-1', type: 'message.send', conversationId: CONTACT, text: 'after a 503', delay: 10 }, { door: 'http', channelId: 'wa-sales' });
    expect(await ended('zt-busy-1')).toMatchObject({ status: 'sent', attempts: 2, upstreamMessageId: expect.any(String) });
    expect(sendTexts().slice(1).map((r) => r.body)).toEqual([
      { number: CONTACT, text: 'after a 503', delay: 10 },
      { number: CONTACT, text: 'after a 503', delay: 10 },
    ]);

    const results = await waitFor('two command results', () => {
      const r = bridge!.stdoutEvents().filter((e) => e.type === 'chatbridge.command.result');
      return r.length === 2 ? r : undefined;
    });
    expect(results.map((e) => (e.data as { command: Record<string, unknown> }).command)).toEqual([
      expect.objectContaining({ commandId: 'zt-hang-1', status: 'sent', attempts: 1 }),
      expect.objectContaining({ commandId: 'zt-busy-1', status: 'sent', attempts: 2 }),
    ]);
    // The hung request's echo settled it: exactly one message went out for it.
    expect(bridge.stdoutEvents().filter((e) => e.type === 'chatbridge.message.sent' && (e.data as { message: { text?: string } }).message.text === 'hung but sent')).toHaveLength(1);
  });

  it('webhook mode holds no socket and still sends over REST', async () => {
    bridge = await startTestBridge({ channels: [webhookChannel('wa-hook')] });
    const outcome = await run('wa-hook', { conversationId: JID, text: 'from webhook mode' }).done;
    expect(outcome).toMatchObject({ upstreamMessageId: expect.any(String), conversationId: JID });
    expect(sendTexts().map((r) => [r.headers.apikey, r.body])).toEqual([[TOKEN, { number: JID, text: 'from webhook mode' }]]);
    expect(sim.handshakes).toHaveLength(0);
    expect(sim.connectedClients('sales')).toBe(0);
  });
});
