import { Body, Controller, Get, HttpCode, HttpException, Inject, NotFoundException, Param, Post, UseGuards } from '@nestjs/common';
import { ApiAuthGuard } from '../common/api-auth.guard';
import { CommandService } from './command.service';
import { commandErrorBody, CommandRequestError, type CommandView, type SubmitResult } from './command.types';

/** The HTTP door of the command gateway (docs/commands.md): `POST /v1/channels/:id/commands` (202) and `GET /v1/commands/:commandId`. */
@Controller('v1')
@UseGuards(ApiAuthGuard)
export class CommandsController {
  constructor(@Inject(CommandService) private readonly commands: CommandService) {}

  /** 202 `{commandId, status, duplicate}`: accepted now, or the stored state of a known commandId (never sent twice). */
  @Post('channels/:id/commands')
  @HttpCode(202)
  async submit(@Param('id') channelId: string, @Body() body: unknown): Promise<SubmitResult> {
    try {
      return await this.commands.submit(body, { door: 'http', channelId });
    } catch (err) {
      throw err instanceof CommandRequestError ? toHttpException(err) : err;
    }
  }

  /** The command's state: accepted, sending, sent or failed, with attempts, upstream message id and error. */
  @Get('commands/:commandId')
  get(@Param('commandId') commandId: string): CommandView {
    const found = this.commands.get(commandId);
    if (!found) throw new NotFoundException(`no command with id "${commandId}" (unknown, or older than commands.ledgerTtlMs)`);
    return found;
  }
}

function toHttpException(err: CommandRequestError): HttpException {
  return new HttpException(commandErrorBody(err), err.status);
}
