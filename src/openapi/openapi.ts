import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { validationMetadatasToSchemas } from 'class-validator-jsonschema';
import { CommandDto } from '../commands/command.dto';
import { commandTypesOf } from '../connectors/provider-commands';
import { providerDefinition, supportedProviders } from '../connectors/registry';
import { schemaRef } from './api-docs';

/** Where the document and its browser are served (docs/api.md#openapi). */
export const OPENAPI_JSON_PATH = '/openapi.json';
export const OPENAPI_UI_PATH = '/docs';

/** Security schemes of `POST /v1/inbound/*`: a channel's token or HMAC, in headers each channel may rename. */
export const INBOUND_TOKEN = 'inboundToken';
export const INBOUND_HMAC = 'inboundHmac';

/** The component of a command body, whatever the provider (see commandSchemas). */
export const COMMAND_SCHEMA = 'Command';

/**
 * Serves the OpenAPI 3.1 document of the HTTP API at `/openapi.json` and Swagger UI at `/docs`, without auth like
 * the probes: it describes routes and schemas, never a token, secret or configured id. Built on the first request,
 * from the routes Nest registered and the class-validator classes they validate with.
 */
export function serveOpenApi(app: INestApplication): void {
  let document: OpenAPIObject | undefined;
  SwaggerModule.setup(OPENAPI_UI_PATH.slice(1), app, () => (document ??= buildOpenApiDocument(app)), {
    jsonDocumentUrl: OPENAPI_JSON_PATH.slice(1),
    raw: ['json'],
    customSiteTitle: 'chatbridge API',
  });
}

/** The document: Nest's routes with their decorators, plus the schemas of the classes they reference. */
function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  // The package's version: dist/openapi/ and src/openapi/ are both two levels below it.
  const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  const config = new DocumentBuilder()
    .setOpenAPIVersion('3.1.0')
    .setTitle('chatbridge')
    .setDescription('The HTTP API of the chatbridge event bridge: channels, commands, webhook endpoints, inbound posts, probes. '
      + 'socket.io (namespace `/v1`) is described in docs/api.md; OpenAPI cannot describe it.')
    .setVersion(version)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'One of CHATBRIDGE_API_TOKENS' })
    .addApiKey({ type: 'apiKey', in: 'header', name: 'x-chatbridge-token', description: "The channel's `inbound.token`, in `inbound.header` (default shown) or as `Authorization: Bearer <token>`" }, INBOUND_TOKEN)
    .addApiKey({ type: 'apiKey', in: 'header', name: 'x-signature', description: "HMAC-SHA256 of the raw body keyed with the channel's `inbound.hmacSecret`, in `inbound.hmacHeader` (default shown): `sha256=<hex>`, hex or base64" }, INBOUND_HMAC)
    .build();
  const document = SwaggerModule.createDocument(app, config);
  const schemas = (document.components ??= {}).schemas ??= {};
  const available = componentSchemas();
  // Only what the routes reference (and what that references in turn) joins the document.
  let missing = unresolved(document, schemas);
  while (missing.length) {
    for (const name of missing) {
      const schema = available[name];
      if (!schema) throw new Error(`OpenAPI: no schema for ${name}`);
      schemas[name] = schema;
    }
    missing = unresolved(document, schemas);
  }
  return document;
}

/**
 * Every schema the document can take: the class-validator classes and the command bodies (`Command`). The AsyncAPI
 * document's commands (scripts/asyncapi.ts) are the same schemas.
 */
export function componentSchemas(): Record<string, SchemaObject> {
  const dtos = validatorSchemas();
  return { ...dtos, ...commandSchemas(new Set(Object.keys(dtos))) };
}

/** JSON schemas of every class-validator class, from the same metadata the routes validate with. */
function validatorSchemas(): Record<string, SchemaObject> {
  return validationMetadatasToSchemas({
    refPointerPrefix: '#/components/schemas/',
    additionalConverters: {
      // Not the library's date|date-time oneOf: the DTOs also require a full time with a zone.
      isIso8601: { type: 'string', format: 'date-time' },
    },
  }) as Record<string, SchemaObject>;
}

/**
 * A command body is the canonical fields (CommandDto) plus the fields of its type at the channel's provider. The
 * body alone does not say the provider (the channel in the path does), and providers share types with different
 * fields (`message.send`), so the body is `anyOf` the providers' commands; each provider's command is `oneOf` its
 * types (told apart by `type`), each type the canonical fields with that type's own class and nothing else
 * (`unevaluatedProperties: false`, as the door refuses an undeclared field).
 */
function commandSchemas(withSchema: ReadonlySet<string>): Record<string, SchemaObject> {
  const out: Record<string, SchemaObject> = {};
  const providers = supportedProviders();
  for (const provider of providers) {
    const commands = providerDefinition(provider)?.commands ?? {};
    out[`${provider}.command`] = {
      title: `A command to a ${provider} channel`,
      oneOf: commandTypesOf(commands).map((type) => {
        const fields = commands[type];
        // A class without fields (NoCommandFields) has no metadata and so no schema: the canonical fields alone.
        const own = withSchema.has(fields.name) ? [schemaRef(fields.name)] : [];
        return { title: type, allOf: [schemaRef(CommandDto.name), ...own, { properties: { type: { const: type } } }], unevaluatedProperties: false } as SchemaObject;
      }),
    };
  }
  out[COMMAND_SCHEMA] = {
    description: "A command (docs/commands.md): the canonical fields of CommandDto plus the fields its type takes at the channel's provider. "
      + 'The path names the channel and so the provider; the body matches that provider\'s schema.',
    anyOf: providers.map((p) => schemaRef(`${p}.command`)),
  };
  return out;
}

/** Names referenced by `#/components/schemas/<name>` anywhere in the document but not in `schemas`. */
function unresolved(document: OpenAPIObject, schemas: Record<string, unknown>): string[] {
  const names = new Set<string>();
  JSON.stringify(document, (key, value: unknown) => {
    if (key === '$ref' && typeof value === 'string' && value.startsWith('#/components/schemas/')) names.add(value.slice('#/components/schemas/'.length));
    return value;
  });
  return [...names].filter((n) => !(n in schemas));
}
