import {
  BadRequestException, Body, ConflictException, Controller, Get, HttpCode, HttpException, Inject, InternalServerErrorException, NotFoundException, Optional, Param, Post,
  ServiceUnavailableException, UseGuards,
} from '@nestjs/common';
import { ApiAuthGuard } from '../../common/api-auth.guard';
import { BridgeError } from '../../common/errors';
import type { EndpointSnapshot } from './webhook.endpoint';
import { parseReplayRequest, ReplayRequestError } from './webhook.replay.dto';
import { WebhookReplayer, type ReplayResult } from './webhook.replay';
import { WebhookSink } from './webhook.sink';

/** `GET /v1/webhooks`, `POST /v1/webhooks/:id/enable` and `POST /v1/webhooks/:id/replay` (docs/api.md). */
@Controller('v1/webhooks')
@UseGuards(ApiAuthGuard)
export class WebhooksController {
  constructor(
    @Inject(WebhookReplayer) private readonly replayer: WebhookReplayer,
    /** Absent when no webhooks are configured: every endpoint id is then unknown. */
    @Optional() @Inject(WebhookSink) private readonly webhooks?: WebhookSink,
  ) {}

  /** Every configured endpoint with `state` (active, retrying, circuit_open, disabled) and `pending`. */
  @Get()
  list(): { webhooks: EndpointSnapshot[] } {
    return { webhooks: this.webhooks?.list() ?? [] };
  }

  /** Re-enables an endpoint disabled by 410 and closes an open circuit breaker; answers its new state. */
  @Post(':id/enable')
  @HttpCode(200)
  enable(@Param('id') id: string): EndpointSnapshot {
    const snapshot = this.webhooks?.enable(id);
    if (!snapshot) throw notFound(id);
    return snapshot;
  }

  /** Re-sends the endpoint's dead-lettered events chosen by time range and/or ids (body: from, to, ids, limit). */
  @Post(':id/replay')
  @HttpCode(200)
  async replay(@Param('id') id: string, @Body() body: unknown): Promise<ReplayResult> {
    if (!this.webhooks?.endpoint(id)) throw notFound(id);
    try {
      return await this.replayer.replay(id, parseReplayRequest(body));
    } catch (err) {
      throw toHttp(err);
    }
  }
}

function notFound(id: string): NotFoundException {
  return new NotFoundException(`no webhook endpoint with id "${id}"`);
}

/** Replay failures as the API's JSON errors. */
function toHttp(err: unknown): HttpException {
  if (err instanceof ReplayRequestError) return new BadRequestException({ statusCode: 400, error: 'Bad Request', message: 'invalid replay request', details: err.details });
  if (!(err instanceof BridgeError)) return new InternalServerErrorException('replay failed');
  if (err.code === 'webhook_not_found') return new NotFoundException(err.message);
  if (err.code === 'endpoint_disabled' || err.code === 'replay_running') return new ConflictException(err.message);
  if (err.code === 'dlq_unreadable') return new ServiceUnavailableException(err.message);
  return new InternalServerErrorException(err.message);
}
