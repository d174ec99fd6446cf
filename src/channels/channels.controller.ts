import { Controller, Get, Inject, NotFoundException, Param, UseGuards } from '@nestjs/common';
import { Bridge } from '../bridge';
import { ApiAuthGuard } from '../common/api-auth.guard';
import type { ChannelSnapshot } from './channels.service';

/** `GET /v1/channels` and `GET /v1/channels/:id`: state, mode, reconnects, last event time. */
@Controller('v1/channels')
@UseGuards(ApiAuthGuard)
export class ChannelsController {
  constructor(@Inject(Bridge) private readonly bridge: Bridge) {}

  @Get()
  list(): { channels: ChannelSnapshot[] } {
    return { channels: this.bridge.channels.list() };
  }

  @Get(':id')
  get(@Param('id') id: string): ChannelSnapshot {
    const channel = this.bridge.channels.get(id);
    if (!channel) throw new NotFoundException(`no channel with id "${id}"`);
    return channel;
  }
}
