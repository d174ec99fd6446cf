import type { Logger } from 'pino';
import { describeError } from '../common/errors';
import { measureJson, type JsonMeasure, type MeasuredPart } from '../common/json-limits';
import type { LimitsConfig } from '../config/config.schema';
import type { InboundContext, UpstreamFrame } from '../connectors/connector.interface';
import type { MappedEvent } from '../connectors/mapper';
import { createEvent, type AnyCanonicalEvent } from '../envelope/envelope';
import type { HotCount, Metrics } from '../health/metrics';
import type { DeadLetters } from '../pipeline/dead-letters';
import type { DurableReceipt } from '../pipeline/durable';
import type { EventPipeline } from '../pipeline/pipeline';
import type { ChannelEntry } from './channel-entry';

/** Why an upstream item was refused instead of published. */
export type RefusalReason = 'frame_too_large' | 'frame_too_deep' | 'event_too_large' | 'unmappable' | 'listener_threw';

/**
 * Where every upstream frame enters (socket frames and inbound posts alike): the input limits, the provider's pure
 * mapper, the event size limit, then the pipeline. A fault boundary: nothing thrown here reaches the socket listener
 * that delivered the frame. An item refused at a limit, or one whose handling threw, is dead-lettered whole and a small
 * `chatbridge.provider.event` with `upstream.error` says what was refused, so the channel goes on and nothing is lost
 * silently.
 */
export class FrameIntake {
  /** Nothing mapped from a frame can be deeper than this: the frame's limit plus the envelope and `data` around it. */
  private readonly eventDepth: number;
  /** `chatbridge_frames_total` by channel, counted once per frame. */
  private readonly framesOf: (channel: string) => HotCount;

  constructor(
    private readonly limits: LimitsConfig,
    private readonly pipeline: EventPipeline,
    private readonly deadLetters: DeadLetters,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.eventDepth = limits.maxJsonDepth + 8;
    this.framesOf = metrics.hotSeries(metrics.frames, {}, 'channel');
  }

  /**
   * One frame of a channel: checked, mapped, each event checked, published. Never throws. With a `receipt` (an
   * inbound post), each published event's durability is tracked on it; refused items are in the dead letters.
   */
  frame(entry: ChannelEntry, frame: UpstreamFrame, receivedAt: Date, receipt?: DurableReceipt): void {
    const t0 = performance.now();
    const { channel } = entry;
    this.framesOf(channel.id).inc();
    entry.traffic.lastEventAt = receivedAt;
    try {
      const size = measureJson(frame.payload, { maxDepth: this.limits.maxJsonDepth, maxBytes: this.limits.maxFrameBytes });
      if (size.exceeded) {
        this.refuse(entry, frame.event, size.exceeded === 'depth' ? 'frame_too_deep' : 'frame_too_large', describeLimit(size, this.limits), { frame: { event: frame.event, payload: frame.payload } }, { receipt });
        return;
      }
      let mapped: MappedEvent[];
      try {
        mapped = entry.definition.map(frame, { channelId: channel.id, provider: channel.provider, receivedAt, options: channel.options });
      } catch (err) {
        // Mappers are total by contract; a throw is a bug. The frame is kept in the dead letters, not lost.
        this.refuse(entry, frame.event, 'unmappable', `mapper failed: ${describeError(err)}`, { frame: { event: frame.event, payload: frame.payload } }, { receipt });
        return;
      }
      for (const m of mapped) this.publish(entry, frame.event, m, t0, receipt, { payload: frame.payload, size });
    } catch (err) {
      this.fault(entry, frame.event, err, [frame.payload]);
    }
  }

  /**
   * A connector's listener threw while handling upstream input (`where`: the upstream event or listener). The input is
   * dead-lettered with the error and reported; the connection and the next frame go on.
   */
  fault(entry: ChannelEntry, where: string, err: unknown, input: unknown[]): void {
    try {
      const size = measureJson(input, { maxDepth: this.limits.maxJsonDepth + 1, maxBytes: this.limits.maxFrameBytes });
      const reason: RefusalReason = size.exceeded === 'depth' ? 'frame_too_deep' : size.exceeded === 'bytes' ? 'frame_too_large' : 'listener_threw';
      this.log.error({ channel: entry.channel.id, event: where, err: describeError(err) }, 'handling an upstream frame failed; the frame is dead-lettered and the channel goes on');
      this.refuse(entry, where, reason, `handling failed: ${describeError(err)}`, { frame: { event: where, payload: input.length === 1 ? input[0] : input } });
    } catch (inner) {
      // The report itself failed (e.g. the pipeline threw): the log is the last place left.
      this.log.error({ channel: entry.channel.id, event: where, err: describeError(err), reportErr: describeError(inner) }, 'an upstream frame failed and could not be reported');
    }
  }

  /**
   * An inbound post that is not JSON or not the provider's shape: counted, dead-lettered whole (`inbound_malformed`)
   * and logged; nothing of it is published.
   */
  malformedPost(entry: ChannelEntry, raw: Buffer, ctx: InboundContext, error: string): void {
    const channelId = entry.channel.id;
    entry.traffic.malformed++;
    this.metrics.malformed.inc({ channel: channelId });
    this.log.warn({ channel: channelId, error, bytes: raw.length }, 'malformed inbound post dead-lettered');
    this.deadLetters.write({ reason: 'inbound_malformed', origin: 'inbound', channelId, frame: { event: ctx.suffix ?? 'inbound', payload: raw.toString('utf8') }, error });
  }

  private publish(entry: ChannelEntry, upstreamEvent: string, m: MappedEvent, t0: number, receipt: DurableReceipt | undefined, frame: MeasuredFrame): void {
    const { channel } = entry;
    const size = measureJson(m.event, { maxDepth: this.eventDepth, maxBytes: this.limits.maxEventBytes }, framePart(frame, m.event));
    if (size.exceeded) {
      const what = `${m.event.type} ${m.event.id}`;
      this.refuse(entry, upstreamEvent, 'event_too_large', `${what}: ${describeLimit(size, this.limits, 'event')}`, { event: m.event }, { refused: m.event, receipt });
      return;
    }
    if (m.event.type === 'chatbridge.provider.event' && m.event.data.upstream.error) {
      entry.traffic.malformed++;
      this.metrics.malformed.inc({ channel: channel.id });
      this.log.warn({ channel: channel.id, event: upstreamEvent, error: m.event.data.upstream.error }, 'malformed upstream frame published as provider event');
    }
    if (this.pipeline.publish({ event: m.event, stableId: m.stableId, receivedAt: t0, durable: receipt?.track() })) entry.traffic.eventsIn++;
  }

  /**
   * Dead-letters the item whole and publishes the small event that says what was refused. A refused event keeps a
   * stable link: the notice's id derives from the refused event's id, so a replayed frame is refused as a duplicate.
   */
  private refuse(
    entry: ChannelEntry, upstreamEvent: string, reason: RefusalReason, detail: string,
    item: { frame?: UpstreamFrame; event?: AnyCanonicalEvent },
    { refused, receipt }: { refused?: AnyCanonicalEvent; receipt?: DurableReceipt } = {},
  ): void {
    const { channel } = entry;
    entry.traffic.malformed++;
    this.metrics.malformed.inc({ channel: channel.id });
    this.metrics.refused.inc({ origin: reason === 'event_too_large' ? 'event' : 'frame', reason });
    const notice = createEvent({
      type: 'chatbridge.provider.event',
      channelId: channel.id,
      provider: channel.provider,
      upstreamKey: refused ? `refused:${refused.id}` : undefined,
      conversationId: refused?.subject,
      data: {
        channel: { id: channel.id, provider: channel.provider },
        upstream: {
          event: upstreamEvent,
          payload: refused ? { refused: { id: refused.id, type: refused.type, reason } } : { refused: { reason } },
          error: `${reason}: ${detail}; the item is in the dead letters`,
        },
      },
    });
    this.log.warn({ channel: channel.id, event: upstreamEvent, reason, detail, notice: notice.event.id }, 'upstream item refused at a limit; dead-lettered and reported');
    void this.deadLetters.write({ reason, origin: reason === 'event_too_large' ? 'limits' : 'intake', channelId: channel.id, ...item, error: `${detail} (reported as event ${notice.event.id})` });
    // An inbound post is answered once its notice, too, is durable.
    this.pipeline.publish({ event: notice.event, stableId: notice.stableId, receivedAt: performance.now(), durable: receipt?.track() });
  }
}

/** A frame's payload and its measure, which passed the frame limits. */
interface MeasuredFrame {
  payload: unknown;
  size: JsonMeasure;
}

/**
 * The frame inside an event mapped from it (`data.upstream.payload`), measured from the frame's own measure so the
 * frame is not walked again for each event: the payload itself, or a copy of it with keys left out (a mapper removing
 * a credential), whose bytes are the frame's less the left-out keys and values. Its depth is the frame's, a bound
 * that cannot pass the event's limit (the frame's limit plus the envelope). Undefined for anything else (then walked).
 */
function framePart({ payload, size }: MeasuredFrame, event: AnyCanonicalEvent): MeasuredPart | undefined {
  const part = (event.data as { upstream?: { payload?: unknown } }).upstream?.payload;
  if (typeof payload !== 'object' || payload === null || typeof part !== 'object' || part === null) return undefined;
  if (part === payload) return { value: part, measure: size };
  if (Array.isArray(payload) || Array.isArray(part)) return undefined;
  const whole = payload as Record<string, unknown>;
  const copy = part as Record<string, unknown>;
  for (const k of Object.keys(copy)) if (!Object.hasOwn(whole, k) || copy[k] !== whole[k]) return undefined;
  let bytes = size.bytes;
  for (const k of Object.keys(whole)) {
    const v = whole[k];
    if (Object.hasOwn(copy, k) || v === undefined || typeof v === 'function') continue;
    bytes -= Buffer.byteLength(k, 'utf8') + 4 + measureJson(v, { maxDepth: Infinity, maxBytes: Infinity }).bytes;
  }
  return { value: part, measure: { depth: size.depth, bytes } };
}

function describeLimit(size: JsonMeasure, limits: LimitsConfig, what: 'frame' | 'event' = 'frame'): string {
  if (size.exceeded === 'depth') return `nested deeper than limits.maxJsonDepth (${limits.maxJsonDepth})`;
  const limit = what === 'event' ? `limits.maxEventBytes (${limits.maxEventBytes})` : `limits.maxFrameBytes (${limits.maxFrameBytes})`;
  return `over ${size.bytes} bytes, above ${limit}`;
}
