import { BadRequestException, ConflictException, Controller, HttpCode, Inject, NotFoundException, Param, Post, Req, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import { Bridge } from '../bridge';
import { ChannelRequestError } from '../channels/channel-mode';
import type { InboundAuthConfig } from '../config/config.schema';
import { verifyInbound } from './inbound.auth';

/** Metric label for posts to channel ids that do not exist (any text could be posted; labels stay bounded). */
export const UNKNOWN_CHANNEL_LABEL = '(unknown)';

/**
 * `POST /v1/inbound/:channelId[/:suffix]`: an upstream in webhook mode posts its events here (SPEC §7). No bearer
 * token: each channel authenticates its upstream with its own `inbound` token or HMAC. Answers after the frames
 * were handed to the pipeline: 200 `{accepted: n}`.
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
    let auth: InboundAuthConfig;
    try {
      auth = channels.inboundAuth(channelId);
    } catch (err) {
      if (!(err instanceof ChannelRequestError)) throw err;
      const known = err.code !== 'unknown_channel';
      metrics.inboundRequests.inc({ channel: known ? channelId : UNKNOWN_CHANNEL_LABEL, outcome: known ? 'refused' : 'unknown_channel' });
      throw known ? new ConflictException(err.message) : new NotFoundException(err.message);
    }
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const check = verifyInbound(auth, req.headers, raw);
    if (!check.ok) {
      metrics.inboundRequests.inc({ channel: channelId, outcome: 'unauthorized' });
      this.bridge.log.warn({ channel: channelId, reason: check.reason }, 'inbound post refused: not authenticated');
      throw new UnauthorizedException(check.reason);
    }
    const parsed = channels.receiveInbound(channelId, raw, suffix === undefined ? {} : { suffix });
    if (!parsed.ok) {
      metrics.inboundRequests.inc({ channel: channelId, outcome: 'malformed' });
      throw new BadRequestException(`${parsed.error} (nothing was published; the body was dead-lettered with reason inbound_malformed)`);
    }
    metrics.inboundRequests.inc({ channel: channelId, outcome: 'accepted' });
    return { accepted: parsed.frames.length };
  }
}
