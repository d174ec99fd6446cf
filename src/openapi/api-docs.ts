import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import type { ExampleObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import type { ApiErrorBody } from '../common/api-error';

/* The decorators the controllers describe themselves with for GET /openapi.json (docs/api.md#openapi). */

/** The error JSON of every refusal (src/common/api-error.ts), as the document shows it. */
export class ApiError implements ApiErrorBody {
  @ApiProperty({ example: 400 }) statusCode!: number;
  @ApiProperty({ example: 'Bad Request' }) error!: string;
  @ApiProperty({ example: 'invalid command' }) message!: string;
  @ApiPropertyOptional({ type: [String], description: 'Every validation problem with its path', example: ['type: required', 'colour: unknown key'] }) details?: string[];
  @ApiPropertyOptional({ description: 'With 429: how long to wait (also in `Retry-After`, in seconds)' }) retryAfterMs?: number;
}

/** What each error status means in this API (docs/api.md#errors-and-status-codes). */
const ERROR_MEANING: Readonly<Record<number, string>> = {
  400: 'not JSON, invalid, or nested too deep; `details` lists every problem',
  401: 'no or wrong credentials',
  404: 'unknown id',
  409: 'conflict with the current state',
  413: 'body larger than the limit',
  415: 'a `Content-Encoding` other than identity',
  422: "the channel's provider cannot do it",
  429: 'a rate limit: the API token, or failed authentications from the address; `Retry-After` says when',
  503: 'not now: retry later',
};

/** Documents error statuses with the shared error JSON; `why` replaces the general meaning of a status for one route. */
export function ApiErrors(statuses: number[], why: Readonly<Record<number, string>> = {}): MethodDecorator & ClassDecorator {
  return applyDecorators(...statuses.map((status) => ApiResponse({ status, description: why[status] ?? ERROR_MEANING[status], type: ApiError })));
}

/** The routes under `/v1` that take the API's bearer tokens: 401 without one, 429 past the token's rate. */
export function ApiBearer(): ClassDecorator {
  return applyDecorators(ApiBearerAuth(), ApiErrors([401, 429]));
}

/** A JSON schema in the document's components (built from the class-validator metadata of the class: openapi.ts). */
export function schemaRef(name: string): { $ref: string } {
  return { $ref: `#/components/schemas/${name}` };
}

/**
 * A request body validated by the class-validator class named `schema` (or a schema composed of such classes): its
 * schema is generated from that class, so the document shows the rules the route applies. The OpenAPI e2e test
 * posts every example.
 */
export function ApiJsonBody(schema: string, description: string, examples: Record<string, ExampleObject>): MethodDecorator {
  return ApiBody({ description, schema: schemaRef(schema), examples });
}
