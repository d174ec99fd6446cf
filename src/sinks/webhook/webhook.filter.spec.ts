import { createBridgeEvent, createEvent } from '../../envelope/envelope';
import { eventFilter } from './webhook.filter';

function ev(type: 'chatbridge.message.received' | 'chatbridge.typing' | 'chatbridge.channel.status', channelId = 'wa-sales') {
  const channel = { id: channelId, provider: 'zapthinker' as const };
  const upstream = { event: 'x', payload: null };
  if (type === 'chatbridge.channel.status') return createEvent({ type, channelId, provider: 'zapthinker', data: { channel, status: { state: 'connected' } } }).event;
  if (type === 'chatbridge.typing') return createEvent({ type, channelId, provider: 'zapthinker', data: { channel, upstream, typing: { active: true } } }).event;
  return createEvent({ type, channelId, provider: 'zapthinker', data: { channel, upstream, message: { direction: 'inbound' } } }).event;
}

describe('webhook event filter', () => {
  it('matches type globs with the shared linear matcher, any of the list, remembering nothing wrong per type', () => {
    const f = eventFilter({ types: ['*.status', 'chatbridge.message.*'] });
    expect(f.matches(ev('chatbridge.message.received'))).toBe(true);
    expect(f.matches(ev('chatbridge.channel.status'))).toBe(true);
    expect(f.matches(ev('chatbridge.typing'))).toBe(false);
    expect(f.matches(ev('chatbridge.typing'))).toBe(false);
    expect(f.matches(ev('chatbridge.message.received'))).toBe(true);
    expect(eventFilter({ types: [`${'*'.repeat(25)}Z`] }).matches(ev('chatbridge.message.received'))).toBe(false);
  });

  it('filters by types and channels; omitted lists match everything', () => {
    expect(eventFilter({}).matches(ev('chatbridge.typing'))).toBe(true);
    const f = eventFilter({ types: ['chatbridge.message.*', 'chatbridge.channel.status'], channels: ['wa-sales'] });
    expect(f.matches(ev('chatbridge.message.received'))).toBe(true);
    expect(f.matches(ev('chatbridge.channel.status'))).toBe(true);
    expect(f.matches(ev('chatbridge.typing'))).toBe(false);
    expect(f.matches(ev('chatbridge.message.received', 'other'))).toBe(false);
  });

  it('leaves the bridge\'s own events out of channel-filtered endpoints, and never sends an endpoint its own status', () => {
    const status = (id: string) => createBridgeEvent('chatbridge.webhook.status', 'webhooks', id, { webhook: { id, url: 'http://x/h' }, status: { state: 'disabled', previous: 'active', reason: 'gone', httpStatus: 410 } }).event;
    expect(eventFilter({ id: 'crm' }).matches(status('billing'))).toBe(true);
    expect(eventFilter({ id: 'crm' }).matches(status('crm'))).toBe(false);
    expect(eventFilter({ id: 'crm', channels: ['wa-sales'] }).matches(status('billing'))).toBe(false);
    expect(eventFilter({ id: 'crm', types: ['chatbridge.webhook.*'] }).matches(status('billing'))).toBe(true);
  });
});
