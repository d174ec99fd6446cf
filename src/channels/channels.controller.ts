import {
  Body, ConflictException, Controller, Get, Inject, NotFoundException, Param, Put, Res, ServiceUnavailableException, UnprocessableEntityException, UseGuards,
} from '@nestjs/common';
import type { Response } from 'express';
import { ApiAuthGuard } from '../common/api-auth.guard';
import { ChannelRequestError, type ModeSwitchResult } from './channel-mode';
import { ChannelRuntime, type ChannelSnapshot } from './channel-runtime';
import { ModeController } from './mode-controller';
import { parseModeSwitch } from './mode-switch.dto';

/** `GET /v1/channels`, `GET /v1/channels/:id` (state, mode, reconnects, last event time) and `PUT /v1/channels/:id/mode`. */
@Controller('v1/channels')
@UseGuards(ApiAuthGuard)
export class ChannelsController {
  constructor(
    @Inject(ChannelRuntime) private readonly channels: ChannelRuntime,
    @Inject(ModeController) private readonly modes: ModeController,
  ) {}

  @Get()
  list(): { channels: ChannelSnapshot[] } {
    return { channels: this.channels.list() };
  }

  @Get(':id')
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
  async setMode(@Param('id') id: string, @Body() body: unknown, @Res({ passthrough: true }) res: Response): Promise<ModeSwitchResult> {
    const mode = parseModeSwitch(body);
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
}
