import { channelState, type ChannelEntry } from '../channels/channel-entry';
import type { ChannelMode } from '../connectors/connector.interface';
import type { ChannelState } from '../envelope/event-types';
import { Metrics } from './metrics';

/** The value of one series of a scrape, or undefined when it is not exposed. */
async function sample(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const link = (state: ChannelState) => ({ state, since: new Date(), connectedWaiters: new Set<() => void>() });

describe('channelState', () => {
  it('is the connection\'s state, except `inbound` for a webhook-mode channel whose socket is closed', () => {
    const of = (mode: ChannelMode, state: ChannelState) => channelState({ mode, link: link(state) } as Pick<ChannelEntry, 'mode' | 'link'>);
    expect(of('webhook', 'disconnected')).toBe('inbound');
    expect(of('socket', 'disconnected')).toBe('disconnected');
    // socket → webhook keeps the socket until the first inbound post: still connected meanwhile.
    expect(of('webhook', 'connected')).toBe('connected');
    expect(of('socket', 'reconnecting')).toBe('reconnecting');
  });
});

describe('Metrics', () => {
  it('names every histogram *_duration_seconds (base unit, Prometheus naming)', async () => {
    const histograms = (await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).filter((m) => String(m.type) === 'histogram').map((m) => m.name);
    expect(histograms.length).toBeGreaterThan(0);
    for (const name of histograms) expect(name).toMatch(/_duration_seconds$/);
  });

  it('reads each channel\'s state at the scrape: one state at 1, the others at 0', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const entries = [{ id: 'wa', mode: 'socket' as ChannelMode, link: link('connected') }, { id: 'hook', mode: 'webhook' as ChannelMode, link: link('disconnected') }];
    metrics.readChannelStatesFrom(() => entries.map((e) => ({ channel: e.id, state: channelState(e) })));
    expect(await sample(metrics, 'chatbridge_channel_state', { channel: 'wa', state: 'connected' })).toBe(1);
    expect(await sample(metrics, 'chatbridge_channel_state', { channel: 'wa', state: 'disconnected' })).toBe(0);
    expect(await sample(metrics, 'chatbridge_channel_state', { channel: 'hook', state: 'inbound' })).toBe(1);
    expect(await sample(metrics, 'chatbridge_channel_state', { channel: 'hook', state: 'disconnected' })).toBe(0);
    // A switch back to socket mode shows at the next scrape, without anyone setting the gauge.
    entries[1].mode = 'socket';
    expect(await sample(metrics, 'chatbridge_channel_state', { channel: 'hook', state: 'inbound' })).toBe(0);
    expect(await sample(metrics, 'chatbridge_channel_state', { channel: 'hook', state: 'disconnected' })).toBe(1);
  });

  it('counts a sink\'s events out through children cached by channel and type', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const count = metrics.eventsOutOf('webhooks');
    const child = count('wa', 'chatbridge.message.received');
    expect(count('wa', 'chatbridge.message.received')).toBe(child);
    child.inc();
    count('wa', 'chatbridge.message.received').inc();
    count('', 'chatbridge.webhook.status').inc();
    expect(await sample(metrics, 'chatbridge_events_out_total', { sink: 'webhooks', channel: 'wa', type: 'chatbridge.message.received' })).toBe(2);
    expect(await sample(metrics, 'chatbridge_events_out_total', { sink: 'webhooks', channel: '', type: 'chatbridge.webhook.status' })).toBe(1);
  });

  it('adds a hot count to its counter whenever the counter is read, and only what was not added yet', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const a = metrics.hotCount(metrics.webhookDelivered, { endpoint: 'a' });
    const again = metrics.hotCount(metrics.webhookDelivered, { endpoint: 'a' });
    expect(again).toBe(a);
    expect(metrics.eventsOutOf('webhooks')).toBe(metrics.eventsOutOf('webhooks'));
    a.inc();
    a.inc(2);
    again.inc();
    expect(await sample(metrics, 'chatbridge_webhook_delivered_total', { endpoint: 'a' })).toBe(4);
    expect(await sample(metrics, 'chatbridge_webhook_delivered_total', { endpoint: 'a' })).toBe(4);
    a.inc();
    expect((await metrics.webhookDelivered.get()).values.find((v) => v.labels.endpoint === 'a')?.value).toBe(5);
    expect(await metrics.registry.metrics()).toContain('chatbridge_webhook_delivered_total{endpoint="a"} 5');
  });

  it('reads a gauge series at every scrape from its reader (a webhook endpoint\'s held events)', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    let held = 3;
    metrics.readAtScrape(metrics.webhookPending, { endpoint: 'a' }, () => held);
    expect(await sample(metrics, 'chatbridge_webhook_pending', { endpoint: 'a' })).toBe(3);
    held = 0;
    expect(await sample(metrics, 'chatbridge_webhook_pending', { endpoint: 'a' })).toBe(0);
  });
});
