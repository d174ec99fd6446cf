import { BadRequestException, ConflictException, Controller, HttpCode, Inject, NotFoundException, Param, Post, Req, Res, ServiceUnavailableException, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ChannelRequestError } from '../channels/channel-mode';
import { DurableReceipt } from '../pipeline/durable';
import { Metrics } from '../health/metrics';
import { admittedBody } from './inbound.gate';
import { InboundReceiver } from './inbound.receiver';

/** `Retry-After` of a 503 for a post whose events Kafka did not take in time (seconds). */
const NOT_DURABLE_RETRY_AFTER_S = 5;

/**
 * `POST /v1/inbound/:channelId[/:suffix]`: an upstream in webhook mode posts its events here. No bearer
 * token: each channel authenticates its upstream with its own `inbound` token or HMAC, checked by the inbound gate
 * (inbound.gate.ts) before this runs, which also reads the body within the channel's limits. Answers 200
 * `{accepted: n}` once the post's events are durable — acknowledged by Kafka, or, without Kafka, handed to the sinks —
 * and 503 with Retry-After when Kafka did not take them within `inbound.ackTimeoutMs` or they were dead-lettered
 * instead (the bridge is stopping), so the upstream sends the post again; its events keep their ids, so a copy that
 * did reach Kafka meanwhile is a duplicate removed by id.
 */
@Controller('v1/inbound')
export class InboundController {
  constructor(
    @Inject(InboundReceiver) private readonly inbound: InboundReceiver,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  /** One upstream post. */
  @Post(':channelId')
  @HttpCode(200)
  post(@Param('channelId') channelId: string, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<{ accepted: number }> {
    return this.receive(channelId, req, res);
  }

  /** One upstream post to a suffixed URL (Evolution's `byEvents`: `/v1/inbound/<id>/messages-upsert`). */
  @Post(':channelId/:suffix')
  @HttpCode(200)
  postWithSuffix(@Param('channelId') channelId: string, @Param('suffix') suffix: string, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<{ accepted: number }> {
    return this.receive(channelId, req, res, suffix);
  }

  private async receive(channelId: string, req: Request, res: Response, suffix?: string): Promise<{ accepted: number }> {
    const { inbound, metrics } = this;
    const raw = admittedBody(req);
    // Only the gate admits posts; a request that did not pass it is never read as the channel's.
    if (!raw) throw new UnauthorizedException('inbound post not authenticated');
    let parsed: ReturnType<typeof inbound.receiveInbound>;
    const receipt = new DurableReceipt();
    try {
      parsed = inbound.receiveInbound(channelId, raw, suffix === undefined ? {} : { suffix }, receipt);
    } catch (err) {
      if (!(err instanceof ChannelRequestError)) throw err;
      throw err.code === 'unknown_channel' ? new NotFoundException(err.message) : new ConflictException(err.message);
    }
    if (!parsed.ok) {
      metrics.inboundRequests.inc({ channel: channelId, outcome: 'malformed' });
      throw new BadRequestException(`${parsed.error} (nothing was published; the body was dead-lettered with reason inbound_malformed)`);
    }
    const settled = await receipt.settled(inbound.inboundAuth(channelId).ackTimeoutMs);
    if (!settled || settled.deadLettered) {
      metrics.inboundRequests.inc({ channel: channelId, outcome: 'not_durable' });
      res.setHeader('retry-after', String(NOT_DURABLE_RETRY_AFTER_S));
      throw new ServiceUnavailableException(settled
        ? `${settled.deadLettered} event(s) of this post could not be written to Kafka (the bridge is stopping or Kafka refused them); they are in the dead letters — send the post again`
        : 'Kafka did not acknowledge the events of this post in time (channels[].inbound.ackTimeoutMs); send it again');
    }
    metrics.inboundRequests.inc({ channel: channelId, outcome: 'accepted' });
    return { accepted: parsed.frames.length };
  }
}
