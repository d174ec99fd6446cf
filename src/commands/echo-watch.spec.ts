import type { UpstreamCommand } from '../connectors/connector.interface';
import { createEvent, type AnyCanonicalEvent, type PipelineEvent } from '../envelope/envelope';
import { EchoWatcher } from './echo-watch';

function sent(channelId: string, text: string): PipelineEvent {
  const { event, stableId } = createEvent({
    type: 'chatbridge.message.sent', channelId, provider: 'watchers', conversationId: 'r1',
    data: { channel: { id: channelId, provider: 'watchers' }, conversation: { id: 'r1' }, message: { id: `m-${text}`, direction: 'outbound', text }, upstream: { event: 'message', payload: {} } },
  });
  return { event: event as AnyCanonicalEvent, stableId, receivedAt: 0 };
}

const byText = (cmd: UpstreamCommand, ev: AnyCanonicalEvent) => ev.type === 'chatbridge.message.sent' && ev.data.message.text === cmd.text;
const cmd = (text: string): UpstreamCommand => ({ commandId: text, type: 'message.send', conversationId: 'r1', text });

describe('EchoWatcher', () => {
  it('keeps an echo that came before the wait began', async () => {
    const w = new EchoWatcher();
    const watch = w.watch('ch', cmd('hi'), byText);
    w.observe(sent('ch', 'hi'));
    expect(watch.seen()?.data).toMatchObject({ message: { id: 'm-hi' } });
    await expect(watch.wait(10)).resolves.toMatchObject({ type: 'chatbridge.message.sent' });
    watch.cancel();
    // A cancelled watch is gone: the next echo of the same text settles a new watch, not the cancelled one.
    const cancelled = w.watch('ch', cmd('hi'), byText);
    cancelled.cancel();
    const next = w.watch('ch', cmd('hi'), byText);
    w.observe(sent('ch', 'hi'));
    expect(cancelled.seen()).toBeUndefined();
    expect(next.seen()).toBeDefined();
  });

  it('resolves a wait when the echo arrives, and gives undefined after the timeout', async () => {
    const w = new EchoWatcher();
    const a = w.watch('ch', cmd('a'), byText);
    const b = w.watch('ch', cmd('b'), byText);
    const waitA = a.wait(1000);
    setTimeout(() => w.observe(sent('ch', 'a')), 5);
    await expect(waitA).resolves.toMatchObject({ data: { message: { text: 'a' } } });
    await expect(b.wait(20)).resolves.toBeUndefined();
  });

  it('ignores other channels, non-matching events and a matcher that throws; one echo settles one command', async () => {
    const w = new EchoWatcher();
    const boom = w.watch('ch', cmd('x'), () => {
      throw new Error('bug');
    });
    const first = w.watch('ch', cmd('same'), byText);
    const second = w.watch('ch', cmd('same'), byText);
    w.observe(sent('other', 'same'));
    w.observe(sent('ch', 'different'));
    expect(first.seen()).toBeUndefined();
    w.observe(sent('ch', 'same'));
    expect(first.seen()).toBeDefined();
    expect(second.seen()).toBeUndefined();
    expect(boom.seen()).toBeUndefined();
    w.observe(sent('ch', 'same'));
    expect(second.seen()).toBeDefined();
  });
});
