import { Controller, Get, HttpCode, Inject, NotFoundException, Param, Post, UseGuards } from '@nestjs/common';
import { Bridge } from '../../bridge';
import { ApiAuthGuard } from '../../common/api-auth.guard';
import type { EndpointSnapshot } from './webhook.endpoint';

/** `GET /v1/webhooks` (state, queue depth, last status) and `POST /v1/webhooks/:id/enable` (SPEC §8). */
@Controller('v1/webhooks')
@UseGuards(ApiAuthGuard)
export class WebhooksController {
  constructor(@Inject(Bridge) private readonly bridge: Bridge) {}

  /** Every configured endpoint with `state` (active, retrying, circuit_open, disabled) and `pending`. */
  @Get()
  list(): { webhooks: EndpointSnapshot[] } {
    return { webhooks: this.bridge.webhooks?.list() ?? [] };
  }

  /** Re-enables an endpoint disabled by 410 and closes an open circuit breaker; answers its new state. */
  @Post(':id/enable')
  @HttpCode(200)
  enable(@Param('id') id: string): EndpointSnapshot {
    const snapshot = this.bridge.webhooks?.enable(id);
    if (!snapshot) throw new NotFoundException(`no webhook endpoint with id "${id}"`);
    return snapshot;
  }
}
