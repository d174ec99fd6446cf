import { BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { IsDefined, IsIn, validateSync } from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
import { formatErrors } from '../config/config.loader';
import type { ChannelMode } from '../connectors/connector.interface';

/** Body of `PUT /v1/channels/:id/mode`. */
@JSONSchema({ additionalProperties: false, description: 'Unknown keys are refused (400)' })
export class ModeSwitchDto {
  @IsDefined() @IsIn(['socket', 'webhook']) mode!: ChannelMode;
}

/** Validates a mode switch body; anything but `{"mode": "socket" | "webhook"}` is a 400 with every problem in `details`. */
export function parseModeSwitch(body: unknown): ChannelMode {
  const details = typeof body === 'object' && body !== null && !Array.isArray(body)
    ? formatErrors(validateSync(plainToInstance(ModeSwitchDto, body), { whitelist: true, forbidNonWhitelisted: true }))
    : ['(body): must be a JSON object'];
  if (details.length) {
    throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: 'expected {"mode": "socket" | "webhook"}', details });
  }
  return (body as ModeSwitchDto).mode;
}

/** `@Body(ModeSwitchPipe)`: the route takes the validated mode; an invalid body is the 400 of parseModeSwitch. */
@Injectable()
export class ModeSwitchPipe implements PipeTransform<unknown, ChannelMode> {
  transform(body: unknown): ChannelMode {
    return parseModeSwitch(body);
  }
}
