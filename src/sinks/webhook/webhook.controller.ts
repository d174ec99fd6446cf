import {
  BadRequestException, Body, ConflictException, Controller, Get, HttpCode, HttpException, Inject, InternalServerErrorException, NotFoundException, Optional, Param, Post,
  Query, ServiceUnavailableException, UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiAuthGuard } from '../../common/api-auth.guard';
import { BridgeError } from '../../common/errors';
import { ApiBearer, ApiErrors, ApiJsonBody } from '../../openapi/api-docs';
import type { DeadLetterPage } from './webhook.dead-letters';
import type { EndpointSnapshot } from './webhook.endpoint';
import { DEFAULT_DEAD_LETTER_PAGE, MAX_DEAD_LETTER_PAGE, parseDeadLetterPage, parseReplayRequest, ReplayRequestDto, ReplayRequestError } from './webhook.replay.dto';
import { WebhookReplayer, type ReplayResult } from './webhook.replay';

const ENDPOINT_ID = { name: 'id', description: 'Webhook endpoint id (`webhooks[].id`)', example: 'crm' };
import { WebhookSink } from './webhook.sink';

/**
 * `GET /v1/webhooks`, `POST /v1/webhooks/:id/enable`, `GET /v1/webhooks/:id/dead-letters` and
 * `POST /v1/webhooks/:id/replay` (docs/api.md).
 */
@Controller('v1/webhooks')
@UseGuards(ApiAuthGuard)
@ApiTags('webhooks')
@ApiBearer()
export class WebhooksController {
  constructor(
    @Inject(WebhookReplayer) private readonly replayer: WebhookReplayer,
    /** Absent when no webhooks are configured: every endpoint id is then unknown. */
    @Optional() @Inject(WebhookSink) private readonly webhooks?: WebhookSink,
  ) {}

  /** Every configured endpoint with `state` (active, retrying, circuit_open, disabled) and `pending`. */
  @Get()
  @ApiOperation({ summary: 'Every webhook endpoint with its delivery state' })
  @ApiResponse({ status: 200, description: '`{webhooks: [...]}`: id, url (origin and path), state, pending, inFlight, lastStatus, lastError, …' })
  list(): { webhooks: EndpointSnapshot[] } {
    return { webhooks: this.webhooks?.list() ?? [] };
  }

  /** Re-enables an endpoint disabled by 410 and closes an open circuit breaker; answers its new state. */
  @Post(':id/enable')
  @HttpCode(200)
  @ApiOperation({ summary: 'Re-enable an endpoint disabled by 410 and close an open circuit breaker' })
  @ApiParam(ENDPOINT_ID)
  @ApiResponse({ status: 200, description: "The endpoint's new state" })
  @ApiErrors([404], { 404: 'unknown webhook endpoint' })
  enable(@Param('id') id: string): EndpointSnapshot {
    const snapshot = this.webhooks?.enable(id);
    if (!snapshot) throw notFound(id);
    return snapshot;
  }

  /** One page of the endpoint's dead letters (file and topic), oldest first; `cursor` is the previous page's `nextCursor`. */
  @Get(':id/dead-letters')
  @ApiOperation({ summary: "List the endpoint's dead letters, oldest first, a page at a time" })
  @ApiParam(ENDPOINT_ID)
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: MAX_DEAD_LETTER_PAGE, default: DEFAULT_DEAD_LETTER_PAGE } })
  @ApiQuery({ name: 'cursor', required: false, schema: { type: 'string' }, description: "The previous page's `nextCursor`" })
  @ApiResponse({ status: 200, description: '`{endpoint, deadLetters: [{id, type, at, reason?, attempts?, lastStatus?, error?, source}], nextCursor?, skippedMalformed}`' })
  @ApiErrors([400, 404, 409, 503], { 404: 'unknown webhook endpoint', 409: "the endpoint's dead letters are being read (a replay or another page)", 503: 'the dead-letter topic could not be read' })
  async deadLetters(@Param('id') id: string, @Query() query: unknown): Promise<DeadLetterPage> {
    if (!this.webhooks?.endpoint(id)) throw notFound(id);
    try {
      return await this.replayer.deadLetters(id, parseDeadLetterPage(query));
    } catch (err) {
      if (err instanceof ReplayRequestError) throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: 'invalid dead-letter query', details: err.details });
      throw toHttp(err);
    }
  }

  /**
   * Re-sends the endpoint's dead-lettered events chosen by time range and/or ids (body: from, to, ids, limit), or with
   * `dryRun` only says which it would.
   */
  @Post(':id/replay')
  @HttpCode(200)
  @ApiOperation({ summary: "Re-send the endpoint's dead-lettered events (docs/webhooks.md)" })
  @ApiParam(ENDPOINT_ID)
  @ApiJsonBody(ReplayRequestDto.name, 'Which dead letters: a time range and/or ids', {
    range: { summary: 'An hour of dead letters', value: { from: '2025-06-05T14:00:00Z', to: '2025-06-05T15:00:00Z' } },
    dryRun: { summary: 'What would be replayed, without sending', value: { ids: ['9f2c0e5a-1b7d-4c3e-8a6f-2d4b1e0c7a93'], dryRun: true } },
  })
  @ApiResponse({ status: 200, description: 'Counts: `{endpoint, matched, replayed, skippedMalformed, sources, truncated?, resumeFrom?}`; a dry run adds `dryRun: true` and `wouldReplay: [{id, type}]`' })
  @ApiErrors([400, 404, 409, 503], {
    404: 'unknown webhook endpoint',
    409: 'the endpoint is disabled (enable it first), or a replay of it is already running',
    503: 'the dead-letter topic could not be read',
  })
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
