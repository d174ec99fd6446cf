import {
  BadRequestException, Body, ConflictException, Controller, Get, HttpCode, HttpException, Inject, InternalServerErrorException, NotFoundException, Param, Post,
  ServiceUnavailableException, UseGuards,
} from '@nestjs/common';
import { Bridge } from '../../bridge';
import { ApiAuthGuard } from '../../common/api-auth.guard';
import { BridgeError } from '../../common/errors';
import { createKafka } from '../../kafka/client';
import type { EndpointSnapshot } from './webhook.endpoint';
import { parseReplayRequest, ReplayRequestError } from './webhook.replay.dto';
import { WebhookReplayer, type ReplayResult } from './webhook.replay';

/** `GET /v1/webhooks`, `POST /v1/webhooks/:id/enable` and `POST /v1/webhooks/:id/replay` (docs/api.md). */
@Controller('v1/webhooks')
@UseGuards(ApiAuthGuard)
export class WebhooksController {
  private readonly replayer: WebhookReplayer;

  constructor(@Inject(Bridge) private readonly bridge: Bridge) {
    const kafka = bridge.config.kafka;
    this.replayer = new WebhookReplayer({
      endpoints: bridge.webhooks,
      deadLetterFile: bridge.config.deadLetter.file,
      deadLetters: bridge.deadLetters,
      kafka: kafka && { topic: kafka.topics.deadLetter, client: () => createKafka(kafka, bridge.log.child({ context: 'webhook-replay' })) },
      metrics: bridge.metrics,
      log: bridge.log.child({ context: 'webhook-replay' }),
    });
  }

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
    if (!snapshot) throw notFound(id);
    return snapshot;
  }

  /** Re-sends the endpoint's dead-lettered events chosen by time range and/or ids (body: from, to, ids, limit). */
  @Post(':id/replay')
  @HttpCode(200)
  async replay(@Param('id') id: string, @Body() body: unknown): Promise<ReplayResult> {
    if (!this.bridge.webhooks?.endpoint(id)) throw notFound(id);
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
