import { createEvent } from '../envelope/envelope';
import type { ChannelStatusData } from '../envelope/event-types';
import type { EventPipeline } from '../pipeline/pipeline';
import type { ChannelEntry } from './channel-entry';

/** Publishes a `chatbridge.channel.status` event (docs/events.md): a connection change, or a mode switch. */
export function publishChannelStatus(pipeline: EventPipeline, entry: ChannelEntry, status: ChannelStatusData['status']): void {
  const { channel } = entry;
  const { event, stableId } = createEvent({
    type: 'chatbridge.channel.status',
    channelId: channel.id,
    provider: channel.provider,
    data: { channel: { id: channel.id, provider: channel.provider }, status },
  });
  pipeline.publish({ event, stableId, receivedAt: performance.now() });
}
