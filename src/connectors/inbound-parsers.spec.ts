import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InboundParse, ProviderDefinition, UpstreamFrame } from './connector.interface';
import type { MapContext, MappedEvent } from './mapper';
import { PROVIDER_REGISTRY, providerDefinition } from './registry';
import { WatchersOptions } from './watchers/watchers.options';

/**
 * Inbound parsers turn an upstream's webhook body into the frames its socket delivers, so the same mapper
 * yields the same canonical event with the same id whichever path the event took (docs/modes.md).
 */
const receivedAt = new Date('2024-06-05T13:20:00Z');

function fixtures(provider: string): Array<{ name: string; frame: UpstreamFrame }> {
  const dir = join(__dirname, provider, '__fixtures__');
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((name) => {
    const { event, payload } = JSON.parse(readFileSync(join(dir, name), 'utf8')) as UpstreamFrame;
    return { name, frame: { event, payload } };
  });
}

function def(name: string): ProviderDefinition {
  const d = providerDefinition(name);
  if (!d) throw new Error(`no provider ${name}`);
  return d;
}

function parse(provider: string, body: unknown, suffix?: string): InboundParse {
  return (def(provider).inbound as NonNullable<ProviderDefinition['inbound']>)(body, suffix ? { suffix } : {});
}

function mapAll(provider: string, frames: UpstreamFrame[], options?: object): MappedEvent[] {
  const ctx: MapContext = { channelId: 'ch-1', provider: def(provider).name, receivedAt, options };
  return frames.flatMap((f) => def(provider).map(f, ctx));
}

/** Events without a stable id get a random one on each mapping; everything else must be identical. */
function comparable(events: MappedEvent[]): unknown[] {
  return events.map((m) => (m.stableId ? m : { ...m, event: { ...m.event, id: '(random)' } }));
}

function withoutDestination(payload: unknown): unknown {
  const { destination: _destination, ...rest } = payload as Record<string, unknown>;
  return rest;
}

function framesOf(result: InboundParse): UpstreamFrame[] {
  if (!result.ok) throw new Error(`parser refused: ${result.error}`);
  return result.frames;
}

describe('inbound parsers: a webhook body gives the same canonical events as the socket frame', () => {
  const watchersOptions = Object.assign(new WatchersOptions(), { userId: 'bot-1' });
  const cases: Array<{ provider: string; body: (frame: UpstreamFrame) => unknown; options?: object }> = [
    // Evolution posts the socket envelope plus `destination` (the URL it posted to).
    { provider: 'zapthinker', body: (f) => ({ ...(f.payload as object), destination: 'https://bridge.example/v1/inbound/ch-1' }) },
    // Captivate (assumed): the socket frame itself.
    { provider: 'captivate', body: (f) => f.payload },
    // Watchers: the bridge's format {event, data}.
    { provider: 'watchers', body: (f) => ({ event: f.event, data: f.payload }), options: watchersOptions },
  ];

  for (const { provider, body, options } of cases) {
    // Frames whose payload is not an object (a bare string, text that is not JSON) have no webhook form.
    const usable = fixtures(provider).filter(({ frame }) => typeof frame.payload === 'object' && frame.payload !== null && (provider !== 'captivate' || parse('captivate', frame.payload).ok));
    it(`${provider}: every fixture (${usable.length}) maps to the same events, with the same stable ids`, () => {
      expect(usable.length).toBeGreaterThan(3);
      let stable = 0;
      for (const { name, frame } of usable) {
        // The issue-631 fixture is a real webhook body: its socket form has no `destination`.
        const socketFrame = provider === 'zapthinker' ? { ...frame, payload: withoutDestination(frame.payload) } : frame;
        const viaSocket = mapAll(provider, [socketFrame], options);
        const viaWebhook = mapAll(provider, framesOf(parse(provider, body(frame))), options);
        expect({ name, events: comparable(viaWebhook) }).toEqual({ name, events: comparable(viaSocket) });
        stable += viaSocket.filter((m) => m.stableId).length;
      }
      expect(stable).toBeGreaterThan(0);
    });
  }

  it('zapthinker: drops `destination` (our own URL) and keeps the rest of the envelope; a byEvents suffix changes nothing', () => {
    const envelope = { event: 'messages.upsert', instance: 'sales', data: { key: { id: 'A1', remoteJid: 'x@s.whatsapp.net' } }, date_time: 't', sender: 's', server_url: 'u' };
    const frames = framesOf(parse('zapthinker', { ...envelope, destination: 'https://b/v1/inbound/ch-1/messages-upsert' }, 'messages-upsert'));
    expect(frames).toEqual([{ event: 'messages.upsert', payload: envelope }]);
  });

  it('zapthinker: data null (logout.instance) is an envelope; bodies that are not envelopes are refused with the reason', () => {
    expect(framesOf(parse('zapthinker', { event: 'logout.instance', instance: 'sales', data: null }))).toHaveLength(1);
    expect(parse('zapthinker', 'messages.upsert')).toEqual({ ok: false, error: expect.stringContaining('Evolution webhook envelope') });
    expect(parse('zapthinker', [{ event: 'messages.upsert', data: {} }])).toEqual({ ok: false, error: expect.stringContaining('JSON object') });
    expect(parse('zapthinker', { instance: 'sales', data: {} })).toEqual({ ok: false, error: expect.stringContaining('without "event"') });
    expect(parse('zapthinker', { event: 'messages.upsert', instance: 'sales' })).toEqual({ ok: false, error: 'Evolution envelope of "messages.upsert" without "data"' });
  });

  it('captivate: anything without event_type is refused, naming the expected shape', () => {
    for (const body of [{}, { action: 'receiveMessage' }, { action: 'receiveMessage', event: { event_payload: {} } }, 42, null]) {
      expect(parse('captivate', body)).toEqual({ ok: false, error: expect.stringContaining('"action":"receiveMessage"') });
    }
  });

  it('watchers: one frame or a list; a list with one bad item is refused whole, naming the item', () => {
    const msg = { project: 'p', roomId: '1', message: { id: 5, text: 'a' }, userId: 'u' };
    expect(framesOf(parse('watchers', { event: 'message', data: msg }))).toEqual([{ event: 'message', payload: msg }]);
    expect(framesOf(parse('watchers', [{ event: 'message', data: msg }, { event: 'exception', data: { status: 'error' } }]))).toHaveLength(2);
    expect(parse('watchers', [{ event: 'message', data: msg }, { data: msg }])).toEqual({ ok: false, error: expect.stringMatching(/^item 1: expected \{"event"/) });
    expect(parse('watchers', [])).toEqual({ ok: false, error: expect.stringContaining('empty list') });
    expect(parse('watchers', { data: msg })).toEqual({ ok: false, error: expect.stringMatching(/^expected \{"event"/) });
  });
});

describe('registry: webhook mode and inbound parsers go together', () => {
  it('every provider that supports webhook mode has an inbound parser; Smartsupp and jwt-websocket have neither', () => {
    for (const d of Object.values(PROVIDER_REGISTRY)) expect({ name: d?.name, inbound: typeof d?.inbound === 'function' }).toEqual({ name: d?.name, inbound: Boolean(d?.supportsWebhookMode) });
    expect(def('smartsupp').supportsWebhookMode).toBe(false);
    expect(def('jwt-websocket').supportsWebhookMode).toBe(false);
  });
});
