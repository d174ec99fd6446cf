import { BadRequestException, ConflictException, Controller, HttpCode, Inject, NotFoundException, Param, Post, Req, Res, ServiceUnavailableException, UnauthorizedException } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiParam, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ChannelRequestError } from '../channels/channel-mode';
import { DurableReceipt } from '../pipeline/durable';
import { Metrics } from '../health/metrics';
import { ApiErrors } from '../openapi/api-docs';
import { INBOUND_HMAC, INBOUND_TOKEN } from '../openapi/openapi';
import { admittedBody } from './inbound.gate';
import { InboundReceiver } from './inbound.receiver';

/** The body of an inbound post: the provider's, read raw by the gate (no DTO: each provider parses its own). */
const INBOUND_BODY = ApiBody({ description: "The upstream's own event JSON, as its provider posts it (docs/modes.md#inbound-webhook-mode)", schema: { type: 'object' } });

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
@ApiTags('inbound')
@ApiSecurity(INBOUND_TOKEN)
@ApiSecurity(INBOUND_HMAC)
@ApiParam({ name: 'channelId', description: 'A channel with an `inbound` block', example: 'wa-sales' })
@ApiResponse({ status: 200, description: "`{accepted: n}`: the post's events are durable" })
@ApiErrors([400, 401, 404, 409, 413, 415, 429, 503], {
  400: 'not JSON, or not an event of the provider (dead-lettered with reason inbound_malformed)',
  401: 'no or wrong channel token or signature',
  404: 'unknown channel',
  409: 'the channel takes no posts (no inbound auth, or a provider without a webhook API)',
  413: "larger than the channel's inbound.maxBodyBytes",
  429: "the channel's inbound.maxInFlight posts are being read, or failed authentications from the address",
  503: 'Kafka did not take the events in time (inbound.ackTimeoutMs) or the bridge is stopping; send the post again (`Retry-After`)',
})
export class InboundController {
  constructor(
    @Inject(InboundReceiver) private readonly inbound: InboundReceiver,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  /** One upstream post. */
  @Post(':channelId')
  @HttpCode(200)
  @ApiOperation({ summary: 'An upstream in webhook mode posts its events (its own auth per channel)' })
  @INBOUND_BODY
  post(@Param('channelId') channelId: string, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<{ accepted: number }> {
    return this.receive(channelId, req, res);
  }

  /** One upstream post to a suffixed URL (Evolution's `byEvents`: `/v1/inbound/<id>/messages-upsert`). */
  @Post(':channelId/:suffix')
  @HttpCode(200)
  @ApiOperation({ summary: "The same, at a suffixed URL (Evolution's byEvents: /v1/inbound/{channelId}/messages-upsert); the body decides the event" })
  @ApiParam({ name: 'suffix', example: 'messages-upsert' })
  @INBOUND_BODY
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
