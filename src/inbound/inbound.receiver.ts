import { ChannelRequestError, takesWebhooks } from '../channels/channel-mode';
import type { ChannelEntry } from '../channels/channel-entry';
import type { ChannelRuntime } from '../channels/channel-runtime';
import type { FrameIntake } from '../channels/frame-intake';
import type { ModeSwitcher } from '../channels/mode-switcher';
import { describeError } from '../common/errors';
import type { InboundAuthConfig } from '../config/config.schema';
import type { InboundContext, InboundParse, ProviderDefinition } from '../connectors/connector.interface';
import type { DurableReceipt } from '../pipeline/durable';

/**
 * The channels' side of `POST /v1/inbound/<id>` (docs/webhooks.md): which channels take posts and how they
 * authenticate, and the posts themselves once the inbound gate has admitted them: JSON → the provider's frames → the
 * FrameIntake, the same path as socket frames.
 */
export class InboundReceiver {
  constructor(
    private readonly channels: ChannelRuntime,
    private readonly intake: FrameIntake,
    /** An accepted post ends the overlap of a switch to webhook mode. */
    private readonly sockets: ModeSwitcher,
  ) {}

  /**
   * The inbound auth of a channel that takes posts at `/v1/inbound/<id>`. Throws ChannelRequestError for an unknown
   * channel, a provider without a webhook API, or a channel without an `inbound` block (never unauthenticated).
   */
  inboundAuth(channelId: string): InboundAuthConfig {
    return this.inboundEntry(channelId).channel.inbound as InboundAuthConfig;
  }

  /**
   * One inbound post, already authenticated: JSON → the provider's frames → the same path as socket frames
   * (metrics, mapper, dedupe by stable id). A body that is not JSON or not the provider's shape is dead-lettered
   * (`inbound_malformed`) and nothing of it is published. Returns the frames handed to the pipeline, or the reason.
   * With a `receipt`, the durability of every event published is tracked on it (the post is answered once they are in Kafka).
   */
  receiveInbound(channelId: string, raw: Buffer, ctx: InboundContext = {}, receipt?: DurableReceipt): InboundParse {
    const entry = this.inboundEntry(channelId);
    const receivedAt = new Date();
    const parsed = parseInbound(entry, raw, ctx);
    if (!parsed.ok) {
      this.intake.malformedPost(entry, raw, ctx, parsed.error);
      return parsed;
    }
    for (const frame of parsed.frames) this.intake.frame(entry, frame, receivedAt, receipt);
    this.sockets.inboundAccepted(entry);
    return parsed;
  }

  private inboundEntry(channelId: string): ChannelEntry {
    const entry = this.channels.entry(channelId);
    if (!entry) throw new ChannelRequestError('unknown_channel', `no channel with id "${channelId}"`);
    if (!takesWebhooks(entry.definition)) {
      throw new ChannelRequestError('no_webhook_api', `channel ${channelId} takes no inbound posts: provider ${entry.channel.provider} has no webhook API`);
    }
    if (!entry.channel.inbound) {
      throw new ChannelRequestError('no_inbound_auth', `channel ${channelId} takes no inbound posts: it has no inbound auth configured (channels[].inbound: token or hmacSecret)`);
    }
    return entry;
  }
}

/** The body as the provider's frames, or why it is not (never throws). */
function parseInbound(entry: ChannelEntry, raw: Buffer, ctx: InboundContext): InboundParse {
  if (!raw.length) return { ok: false, error: 'empty body: expected the upstream\'s event as JSON' };
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `body is not JSON: ${describeError(err)}` };
  }
  try {
    // Presence checked by inboundEntry (takesWebhooks).
    return (entry.definition.inbound as NonNullable<ProviderDefinition['inbound']>)(body, ctx);
  } catch (err) {
    // Parsers are total by contract; a throw is a bug, and the body is still dead-lettered, not lost.
    return { ok: false, error: `inbound parser failed: ${describeError(err)}` };
  }
}
