import {
  Body, ConflictException, Controller, Get, HttpCode, Inject, NotFoundException, Param, Post, Put, Res, ServiceUnavailableException, UnprocessableEntityException, UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiAuthGuard } from '../common/api-auth.guard';
import type { ChannelMode } from '../connectors/connector.interface';
import { ApiBearer, ApiErrors, ApiJsonBody } from '../openapi/api-docs';
import { ChannelRequestError, type ModeSwitchResult } from './channel-mode';
import { ChannelRuntime, type ChannelSnapshot } from './channel-runtime';
import { ModeController } from './mode-controller';
import { ModeSwitchDto, ModeSwitchPipe } from './mode-switch.dto';

const CHANNEL_ID = { name: 'id', description: 'Channel id', example: 'wa-sales' };

/**
 * `GET /v1/channels`, `GET /v1/channels/:id` (state, mode, reconnects, last event time), `PUT /v1/channels/:id/mode`
 * and `POST /v1/channels/:id/reconnect`.
 */
@Controller('v1/channels')
@UseGuards(ApiAuthGuard)
@ApiTags('channels')
@ApiBearer()
export class ChannelsController {
  constructor(
    @Inject(ChannelRuntime) private readonly channels: ChannelRuntime,
    @Inject(ModeController) private readonly modes: ModeController,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Every channel: state, mode, held, reconnects, last event time' })
  @ApiResponse({ status: 200, description: '`{channels: [...]}`' })
  list(): { channels: ChannelSnapshot[] } {
    return { channels: this.channels.list() };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One channel' })
  @ApiParam(CHANNEL_ID)
  @ApiResponse({ status: 200, description: 'id, provider, mode, state, held, since, lastEventAt, reconnects, lastError, eventsIn, malformedFrames …' })
  @ApiErrors([404], { 404: 'unknown channel' })
  get(@Param('id') id: string): ChannelSnapshot {
    const channel = this.channels.get(id);
    if (!channel) throw new NotFoundException(`no channel with id "${id}"`);
    return channel;
  }

  /**
   * Switches socket ↔ webhook (docs/modes.md): 200 when done, 202 when the socket is not connected yet after the wait or
   * (cluster) when another replica holds the channel and applies the persisted switch, 503 when it could not be persisted.
   */
  @Put(':id/mode')
  @ApiOperation({ summary: 'Switch a channel between socket and webhook mode (docs/modes.md)' })
  @ApiParam(CHANNEL_ID)
  @ApiJsonBody(ModeSwitchDto.name, 'The mode to switch to', { webhook: { summary: 'Receive upstream posts on /v1/inbound/{channelId}', value: { mode: 'webhook' } } })
  @ApiResponse({ status: 200, description: 'Switched (or already in that mode: `changed: false`)' })
  @ApiResponse({ status: 202, description: 'Switched, socket not connected yet; or another replica holds the channel and applies it' })
  @ApiErrors([400, 404, 409, 422, 503], {
    404: 'unknown channel',
    409: 'the channel has no inbound auth configured, so webhook mode could not authenticate posts',
    422: "the channel's provider has no webhook API",
    503: 'the new mode could not be persisted; the channel stays as it was',
  })
  async setMode(@Param('id') id: string, @Body(ModeSwitchPipe) mode: ChannelMode, @Res({ passthrough: true }) res: Response): Promise<ModeSwitchResult> {
    try {
      const result = await this.modes.setMode(id, mode);
      res.status(result.socket === 'another_replica' || (result.changed && result.socket === 'connecting') ? 202 : 200);
      return result;
    } catch (err) {
      if (!(err instanceof ChannelRequestError)) throw err;
      if (err.code === 'unknown_channel') throw new NotFoundException(err.message);
      if (err.code === 'no_webhook_api') throw new UnprocessableEntityException(err.message);
      if (err.code === 'mode_not_persisted') throw new ServiceUnavailableException(err.message);
      throw new ConflictException(err.message);
    }
  }

  /** Forces the channel's supervisor to drop its upstream connection and connect again now (backoff reset). */
  @Post(':id/reconnect')
  @HttpCode(202)
  @ApiOperation({ summary: "Drop the channel's upstream connection and connect again now" })
  @ApiParam(CHANNEL_ID)
  @ApiResponse({ status: 202, description: 'Reconnecting: the snapshot, `state: "reconnecting"`; follow it with GET /v1/channels/{id}' })
  @ApiErrors([404, 409], { 404: 'unknown channel', 409: 'this replica holds no socket for the channel (webhook mode, or another replica holds it)' })
  async reconnect(@Param('id') id: string): Promise<ChannelSnapshot> {
    try {
      return await this.channels.reconnect(id);
    } catch (err) {
      if (!(err instanceof ChannelRequestError)) throw err;
      throw err.code === 'unknown_channel' ? new NotFoundException(err.message) : new ConflictException(err.message);
    }
  }
}
