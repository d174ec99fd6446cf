import { Body, Controller, Get, HttpCode, HttpException, Inject, NotFoundException, Param, Post, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiAuthGuard } from '../common/api-auth.guard';
import { ApiBearer, ApiErrors, ApiJsonBody } from '../openapi/api-docs';
import { COMMAND_SCHEMA } from '../openapi/openapi';
import { CommandService } from './command.service';
import { commandErrorBody, CommandRequestError, type CommandView, type SubmitResult } from './command.types';

/** The HTTP door of the command gateway (docs/commands.md): `POST /v1/channels/:id/commands` (202) and `GET /v1/commands/:commandId`. */
@Controller('v1')
@UseGuards(ApiAuthGuard)
@ApiTags('commands')
@ApiBearer()
export class CommandsController {
  constructor(@Inject(CommandService) private readonly commands: CommandService) {}

  /**
   * 202 `{commandId, status, duplicate}`: accepted now, or the stored state of a known commandId (never sent twice).
   * The body stays `unknown` here: the command service validates it, the same for the HTTP, socket.io and Kafka doors
   * (CommandDto, then the provider's class once the channel is known).
   */
  @Post('channels/:id/commands')
  @HttpCode(202)
  @ApiOperation({ summary: 'Send a command to a channel (docs/commands.md)' })
  @ApiParam({ name: 'id', description: 'Channel id', example: 'wa-sales' })
  @ApiJsonBody(COMMAND_SCHEMA, "A command: the canonical fields plus its type's fields at the channel's provider", {
    message: { summary: 'Send a text message', value: { commandId: '0b6c2f1e-6f0c-4a51-9a1e-3f4b7d2c9a10', type: 'message.send', conversationId: '5511999999999@s.whatsapp.net', text: 'Hi' } },
    delayed: { summary: 'A ZapThinker message with its own fields', value: { commandId: 'crm-42:reply-1', type: 'message.send', conversationId: '5511999999999', text: 'Your order shipped', delay: 1200, linkPreview: false } },
  })
  @ApiResponse({ status: 202, description: 'Accepted, or the stored state of a commandId already known (`duplicate: true`)' })
  @ApiErrors([400, 404, 409, 413, 422, 503], {
    404: 'unknown channel',
    409: 'the commandId was used with another body',
    413: 'larger than api.maxBodyBytes (`command_too_large`)',
    422: "the channel's provider does not support this command type",
    503: 'the channel is busy, the ledger did not take it, or the bridge is stopping; retry with the same commandId',
  })
  async submit(@Param('id') channelId: string, @Body() body: unknown): Promise<SubmitResult> {
    try {
      return await this.commands.submit(body, { door: 'http', channelId });
    } catch (err) {
      throw err instanceof CommandRequestError ? toHttpException(err) : err;
    }
  }

  /** The command's state: accepted, sending, sent or failed, with attempts, upstream message id and error. */
  @Get('commands/:commandId')
  @ApiOperation({ summary: "A command's state: accepted, sending, sent or failed" })
  @ApiParam({ name: 'commandId', example: '0b6c2f1e-6f0c-4a51-9a1e-3f4b7d2c9a10' })
  @ApiResponse({ status: 200, description: '`{commandId, channelId, type, status, attempts, upstreamMessageId?, conversationId?, error?, result?, acceptedAt, updatedAt}`' })
  @ApiErrors([404], { 404: 'unknown command, or older than commands.ledgerTtlMs' })
  get(@Param('commandId') commandId: string): CommandView {
    const found = this.commands.get(commandId);
    if (!found) throw new NotFoundException(`no command with id "${commandId}" (unknown, or older than commands.ledgerTtlMs)`);
    return found;
  }
}

function toHttpException(err: CommandRequestError): HttpException {
  return new HttpException(commandErrorBody(err), err.status);
}
