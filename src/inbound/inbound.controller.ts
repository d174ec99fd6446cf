import { BadRequestException, ConflictException, Controller, HttpCode, Inject, NotFoundException, Param, Post, Req, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import { Bridge } from '../bridge';
import { ChannelRequestError } from '../channels/channel-mode';
import { admittedBody } from './inbound.gate';

/**
 * `POST /v1/inbound/:channelId[/:suffix]`: an upstream in webhook mode posts its events here. No bearer
 * token: each channel authenticates its upstream with its own `inbound` token or HMAC, checked by the inbound gate
 * (inbound.gate.ts) before this runs, which also reads the body within the channel's limits. Answers after the
 * frames were handed to the pipeline: 200 `{accepted: n}`.
 */
@Controller('v1/inbound')
export class InboundController {
  constructor(@Inject(Bridge) private readonly bridge: Bridge) {}

  /** One upstream post. */
  @Post(':channelId')
  @HttpCode(200)
  post(@Param('channelId') channelId: string, @Req() req: Request): { accepted: number } {
    return this.receive(channelId, req);
  }

  /** One upstream post to a suffixed URL (Evolution's `byEvents`: `/v1/inbound/<id>/messages-upsert`). */
  @Post(':channelId/:suffix')
  @HttpCode(200)
  postWithSuffix(@Param('channelId') channelId: string, @Param('suffix') suffix: string, @Req() req: Request): { accepted: number } {
    return this.receive(channelId, req, suffix);
  }

  private receive(channelId: string, req: Request, suffix?: string): { accepted: number } {
    const { channels, metrics } = this.bridge;
    const raw = admittedBody(req);
    // Only the gate admits posts; a request that did not pass it is never read as the channel's.
    if (!raw) throw new UnauthorizedException('inbound post not authenticated');
    let parsed: ReturnType<typeof channels.receiveInbound>;
    try {
      parsed = channels.receiveInbound(channelId, raw, suffix === undefined ? {} : { suffix });
    } catch (err) {
      if (!(err instanceof ChannelRequestError)) throw err;
      throw err.code === 'unknown_channel' ? new NotFoundException(err.message) : new ConflictException(err.message);
    }
    if (!parsed.ok) {
      metrics.inboundRequests.inc({ channel: channelId, outcome: 'malformed' });
      throw new BadRequestException(`${parsed.error} (nothing was published; the body was dead-lettered with reason inbound_malformed)`);
    }
    metrics.inboundRequests.inc({ channel: channelId, outcome: 'accepted' });
    return { accepted: parsed.frames.length };
  }
}
