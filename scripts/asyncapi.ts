/**
 * `npm run asyncapi`: writes `docs/schemas/<type>.json`, one JSON Schema per event type, and `docs/asyncapi.yaml`, the
 * AsyncAPI 3.0 document of the Kafka topics, the outbound webhooks and the socket.io namespace `/v1`
 * (docs/events.md#schemas). Everything is generated from the TypeScript types (the typed event map, the socket.io
 * acks) and from the class-validator classes the command doors validate with, so the documents cannot drift from
 * the code: a test regenerates them in memory and fails when the checked-in files differ.
 */
import 'reflect-metadata';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { DATA_SCHEMAS } from '../src/envelope/envelope';
import { EVENT_TYPES, type EventType } from '../src/envelope/event-types';
import { STRUCTURED_CONTENT_TYPE } from '../src/sinks/kafka/kafka.record';
import { COMMAND_SCHEMA, componentSchemas } from '../src/openapi/openapi';
import { endRun, eventSchemas, reachable, typeSchemas, type Json } from './type-schemas';

const ROOT = join(__dirname, '..');

/** Where the generated files go, relative to the repository. */
export const ASYNCAPI_PATH = 'docs/asyncapi.yaml';
export const SCHEMAS_DIR = 'docs/schemas';

/** Types of the socket.io messages, generated from their TypeScript declarations. */
const SOCKET_TYPES = ['Subscription', 'SubscribeAck', 'SubmitResult', 'ErrorAck', 'StreamError'] as const;

/** `#/components/schemas/<name>`, the place AsyncAPI (as OpenAPI) keeps shared schemas. */
const component = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** A reference from docs/asyncapi.yaml to a per-type schema file (or a part of it). */
const schemaFile = (type: EventType, pointer = '') => ({ $ref: `./schemas/${type}.json${pointer ? `#${pointer}` : ''}` });

/** A schema of string headers, all optional unless named in `required`. */
function headers(props: Record<string, Json>, required: string[] = []): Json {
  return { type: 'object', properties: props, ...(required.length ? { required } : {}) };
}

/** The `ce_` headers of a binary-mode record of `type` (docs/kafka.md#producing-events). */
function binaryHeaders(type: EventType): Json {
  const attr = (name: string, description: string) => ({ type: 'string', description });
  return headers({
    ce_specversion: { type: 'string', const: '1.0' },
    ce_id: attr('id', 'The event id (deduplicate on it).'),
    ce_source: attr('source', '`/chatbridge/<provider>/<channelId>`'),
    ce_type: { type: 'string', const: type },
    ce_subject: attr('subject', 'The conversation id, where there is one.'),
    ce_time: { type: 'string', format: 'date-time' },
    ce_dataschema: { type: 'string', const: DATA_SCHEMAS[type] },
    ce_partitionkey: attr('partitionkey', 'The record key: `<channelId>:<conversationId>` or `<channelId>`.'),
    ce_channelid: attr('channelid', 'The channel (absent on the bridge\'s own events).'),
    ce_provider: attr('provider', 'The provider (absent on the bridge\'s own events).'),
    'content-type': { type: 'string', const: 'application/json' },
  }, ['ce_specversion', 'ce_id', 'ce_source', 'ce_type', 'ce_time', 'ce_dataschema', 'ce_partitionkey', 'content-type']);
}

/** Names of the per-type messages in `components.messages`. */
const binaryMessage = (type: EventType) => `${type}.binary`;
const structuredMessage = (type: EventType) => `${type}.structured`;
const webhookMessage = (type: EventType) => `${type}.webhook`;
const messageRef = (name: string) => ({ $ref: `#/components/messages/${name}` });
const refs = (names: string[]) => Object.fromEntries(names.map((n) => [n, messageRef(n)]));

const KAFKA_BINDING = '0.5.0';
const HTTP_BINDING = '0.3.0';

/** The AsyncAPI 3.0 document (docs/asyncapi.yaml). */
export function asyncApiDocument(): Json {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const socket = typeSchemas(SOCKET_TYPES);
  const socketDefinitions: Record<string, unknown> = {};
  for (const name of SOCKET_TYPES) {
    const { $schema: _s, definitions, ...schema } = socket[name];
    socketDefinitions[name] = schema;
    Object.assign(socketDefinitions, definitions);
  }
  const commandSchemas = reachable([COMMAND_SCHEMA], componentSchemas(), '#/components/schemas/');
  // The TypeScript definitions point at #/definitions/: in the document they are components.
  const schemas = JSON.parse(JSON.stringify({ ...socketDefinitions, ...commandSchemas }).replace(/"#\/definitions\//g, '"#/components/schemas/')) as Json;

  const messages: Record<string, Json> = {};
  for (const type of EVENT_TYPES) {
    messages[binaryMessage(type)] = {
      name: type,
      title: `${type} (binary mode)`,
      summary: 'A record of `topics.events` in CloudEvents binary mode (the default): the value is `data`, the attributes are `ce_` headers.',
      contentType: 'application/json',
      headers: binaryHeaders(type),
      payload: schemaFile(type, '/properties/data'),
      bindings: { kafka: { key: { type: 'string', description: 'The event\'s `partitionkey`.' }, bindingVersion: KAFKA_BINDING } },
    };
    messages[structuredMessage(type)] = {
      name: type,
      title: `${type} (structured mode)`,
      summary: 'A record of `topics.events` with `kafka.producer.cloudEventsMode: structured`: the value is the whole event.',
      contentType: STRUCTURED_CONTENT_TYPE,
      headers: headers({ 'content-type': { type: 'string', const: STRUCTURED_CONTENT_TYPE } }, ['content-type']),
      payload: schemaFile(type),
      bindings: { kafka: { key: { type: 'string', description: 'The event\'s `partitionkey`.' }, bindingVersion: KAFKA_BINDING } },
    };
    messages[webhookMessage(type)] = {
      name: type,
      title: `${type} (webhook)`,
      summary: 'A signed POST of the event in structured JSON (Standard Webhooks).',
      contentType: STRUCTURED_CONTENT_TYPE,
      headers: headers({
        'content-type': { type: 'string', const: STRUCTURED_CONTENT_TYPE },
        'webhook-id': { type: 'string', description: 'The CloudEvent `id`, the same on every retry: deduplicate on it.' },
        'webhook-timestamp': { type: 'string', pattern: '^[0-9]+$', description: 'Unix seconds of this attempt.' },
        'webhook-signature': { type: 'string', description: '`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`; two, space-separated, while a previous secret is set.' },
      }, ['content-type', 'webhook-id', 'webhook-timestamp', 'webhook-signature']),
      payload: schemaFile(type),
      bindings: { http: { bindingVersion: HTTP_BINDING } },
    };
  }
  messages.command = {
    name: 'command',
    title: 'A command',
    summary: 'A command (docs/commands.md): the canonical fields plus the fields its type takes at the channel\'s provider, and `channelId` unless the key names the channel.',
    contentType: 'application/json',
    payload: component(COMMAND_SCHEMA),
    bindings: { kafka: { key: { type: 'string', description: 'The channel id (a Smartsupp visitor: `<channelId>/<visitorId>`).' }, bindingVersion: KAFKA_BINDING } },
  };
  messages.deadLetter = {
    name: 'deadLetter',
    title: 'A dead letter',
    summary: 'What could not be delivered or was refused, with why in `dlq_` headers (docs/kafka.md#dead-letters).',
    description: 'A dead-lettered event is the structured CloudEvent (key its `partitionkey`, header `ce_id`); a refused frame is '
      + '`{event, payload}`; a consumed record (poison, invalid command, undecodable) keeps its original key, headers and value '
      + 'bytes, plus `dlq_topic`/`dlq_partition`/`dlq_offset`.',
    headers: headers({
      dlq_reason: { type: 'string', description: 'Why (`queue_full`, `webhook_retries_exhausted`, `poison_record`, …; docs/kafka.md#dead-letters).' },
      dlq_origin: { type: 'string', description: '`kafka`, `intake`, `limits`, `inbound`, a webhook endpoint id, `kafka-commands`, …' },
      dlq_channelid: { type: 'string' },
      dlq_error: { type: 'string', maxLength: 1000 },
      dlq_attempts: { type: 'string', pattern: '^[0-9]+$' },
      dlq_status: { type: 'string', description: 'The last HTTP status of a webhook delivery.' },
      dlq_topic: { type: 'string' },
      dlq_partition: { type: 'string', pattern: '^[0-9]+$' },
      dlq_offset: { type: 'string', pattern: '^[0-9]+$' },
      ce_id: { type: 'string', description: 'The dead-lettered event\'s id.' },
    }, ['dlq_reason', 'dlq_origin']),
    payload: {},
    bindings: { kafka: { key: { type: ['string', 'null'], description: 'The event\'s `partitionkey`, the channel id, or the original record\'s key.' }, bindingVersion: KAFKA_BINDING } },
  };
  const socketMessage = (name: string, summary: string, payload: Json) => ({ name, title: `socket.io \`${name}\``, summary, contentType: 'application/json', payload });
  messages.socketEvent = socketMessage('event', 'One event of the live stream, in structured JSON.', { oneOf: EVENT_TYPES.map((t) => schemaFile(t)) });
  messages.socketSubscribe = socketMessage('subscribe', 'Sets what the socket receives from now on (omitted list = all).', component('Subscription'));
  messages.socketUnsubscribe = socketMessage('unsubscribe', 'Stops the events.', {});
  messages.socketSubscribeAck = socketMessage('subscribe ack', 'What the socket now receives, or the error JSON.', { oneOf: [component('SubscribeAck'), component('ErrorAck')] });
  // `required` evaluates no property, so the command's `unevaluatedProperties: false` still holds.
  messages.socketCommand = socketMessage('command', 'A command plus `channelId`, as `POST /v1/channels/:id/commands` takes it.', { allOf: [component(COMMAND_SCHEMA), { required: ['channelId'] }] });
  messages.socketCommandAck = socketMessage('command ack', 'The 202 body, or the error JSON.', { oneOf: [component('SubmitResult'), component('ErrorAck')] });
  messages.socketStreamError = socketMessage('stream_error', 'Sent to a slow subscriber just before it is disconnected.', component('StreamError'));

  const eventMessages = (name: (t: EventType) => string) => refs(EVENT_TYPES.map(name));
  const channels: Json = {
    events: {
      address: 'chatbridge.events',
      title: 'topics.events',
      description: 'Every event, key = `partitionkey` (docs/kafka.md). Binary mode by default; structured with `kafka.producer.cloudEventsMode: structured`. The address is the default `kafka.topics.events`.',
      servers: [{ $ref: '#/servers/kafka' }],
      messages: { ...eventMessages(binaryMessage), ...eventMessages(structuredMessage) },
    },
    commands: {
      address: 'chatbridge.commands',
      title: 'topics.commands',
      description: 'Commands to run (docs/commands.md#commands-from-kafka); the default `kafka.topics.commands`.',
      servers: [{ $ref: '#/servers/kafka' }],
      messages: { command: messageRef('command') },
    },
    deadLetters: {
      address: 'chatbridge.dlq',
      title: 'topics.deadLetter',
      description: 'Dead letters (docs/kafka.md#dead-letters); the default `kafka.topics.deadLetter`.',
      servers: [{ $ref: '#/servers/kafka' }],
      messages: { deadLetter: messageRef('deadLetter') },
    },
    webhook: {
      address: null,
      title: 'An outbound webhook endpoint',
      description: 'Each endpoint\'s `url` (`webhooks:` in the config) receives the events matching its `types` and `channels` (docs/webhooks.md).',
      servers: [{ $ref: '#/servers/webhookReceiver' }],
      messages: eventMessages(webhookMessage),
      bindings: { http: { bindingVersion: HTTP_BINDING } },
    },
    socketio: {
      address: '/v1',
      title: 'socket.io namespace /v1',
      description: 'socket.io v4, path `/socket.io`, handshake `auth: {token}` (docs/api.md#socketio-namespace-v1). Each message\'s `name` is its socket.io event name; acks are the replies.',
      servers: [{ $ref: '#/servers/api' }],
      messages: {
        event: messageRef('socketEvent'), subscribe: messageRef('socketSubscribe'), unsubscribe: messageRef('socketUnsubscribe'),
        subscribeAck: messageRef('socketSubscribeAck'), command: messageRef('socketCommand'), commandAck: messageRef('socketCommandAck'),
        streamError: messageRef('socketStreamError'),
      },
    },
  };
  const channelMessages = (channel: string, names: string[]) => names.map((n) => ({ $ref: `#/channels/${channel}/messages/${n}` }));
  const operations: Json = {
    publishEvents: {
      action: 'send', channel: { $ref: '#/channels/events' }, summary: 'The bridge writes every event to topics.events.',
      messages: channelMessages('events', [...EVENT_TYPES.map(binaryMessage), ...EVENT_TYPES.map(structuredMessage)]),
    },
    consumeCommands: {
      action: 'receive', channel: { $ref: '#/channels/commands' }, summary: 'The command consumer group runs the commands.',
      messages: channelMessages('commands', ['command']),
    },
    publishDeadLetters: {
      action: 'send', channel: { $ref: '#/channels/deadLetters' }, summary: 'The bridge writes dead letters while Kafka can take them.',
      messages: channelMessages('deadLetters', ['deadLetter']),
    },
    postWebhooks: {
      action: 'send', channel: { $ref: '#/channels/webhook' }, summary: 'POSTs each matching event to each endpoint, signed; 2xx = delivered.',
      messages: channelMessages('webhook', EVENT_TYPES.map(webhookMessage)),
      bindings: { http: { method: 'POST', bindingVersion: HTTP_BINDING } },
    },
    streamEvents: {
      action: 'send', channel: { $ref: '#/channels/socketio' }, summary: 'Sends each event matching the socket\'s subscription.',
      messages: channelMessages('socketio', ['event']),
    },
    streamError: {
      action: 'send', channel: { $ref: '#/channels/socketio' }, summary: 'Cuts off a slow subscriber.',
      messages: channelMessages('socketio', ['streamError']),
    },
    subscribe: {
      action: 'receive', channel: { $ref: '#/channels/socketio' }, summary: 'Sets the socket\'s subscription.',
      messages: channelMessages('socketio', ['subscribe']),
      reply: { channel: { $ref: '#/channels/socketio' }, messages: channelMessages('socketio', ['subscribeAck']) },
    },
    unsubscribe: {
      action: 'receive', channel: { $ref: '#/channels/socketio' }, summary: 'Stops the socket\'s events (ack `{subscribed: null}`).',
      messages: channelMessages('socketio', ['unsubscribe']),
      reply: { channel: { $ref: '#/channels/socketio' }, messages: channelMessages('socketio', ['subscribeAck']) },
    },
    command: {
      action: 'receive', channel: { $ref: '#/channels/socketio' }, summary: 'Takes a command, as the HTTP door does.',
      messages: channelMessages('socketio', ['command']),
      reply: { channel: { $ref: '#/channels/socketio' }, messages: channelMessages('socketio', ['commandAck']) },
    },
  };
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'chatbridge',
      version,
      description: 'What the chatbridge event bridge sends and takes besides its HTTP API: canonical CloudEvents on Kafka, in '
        + 'outbound webhooks and on the socket.io live stream; commands from Kafka and socket.io; dead letters. Generated by '
        + '`npm run asyncapi` from the TypeScript types; one JSON Schema per event type is in `schemas/` (docs/events.md#schemas).',
    },
    defaultContentType: 'application/json',
    servers: {
      kafka: { host: 'localhost:9092', protocol: 'kafka', description: 'Your Kafka cluster (`kafka.brokers`).' },
      webhookReceiver: {
        host: '{host}', protocol: 'https', description: 'An endpoint\'s `url` (http or https).',
        variables: { host: { description: 'The host of the endpoint\'s `url`.' } },
      },
      api: { host: 'localhost:8080', pathname: '/socket.io', protocol: 'ws', description: 'The bridge\'s HTTP port (`PORT`), socket.io over WebSocket or long-polling.' },
    },
    channels,
    operations,
    components: { messages, schemas },
  };
}

/** Every generated file, path (relative to the repository) → contents. */
export function generatedFiles(): Map<string, string> {
  try {
    const files = new Map<string, string>();
    for (const [type, schema] of Object.entries(eventSchemas())) files.set(`${SCHEMAS_DIR}/${type}.json`, `${JSON.stringify(schema, null, 2)}\n`);
    const header = '# Generated by `npm run asyncapi` (scripts/asyncapi.ts) from the TypeScript types: do not edit.\n';
    files.set(ASYNCAPI_PATH, header + stringify(asyncApiDocument(), { lineWidth: 0, aliasDuplicateObjects: false }));
    return files;
  } finally {
    endRun();
  }
}

if (require.main === module) {
  const files = generatedFiles();
  mkdirSync(join(ROOT, SCHEMAS_DIR), { recursive: true });
  // A schema of a type that no longer exists goes too.
  for (const name of readdirSync(join(ROOT, SCHEMAS_DIR), { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)) {
    if (!files.has(`${SCHEMAS_DIR}/${name}`)) rmSync(join(ROOT, SCHEMAS_DIR, name));
  }
  for (const [path, text] of files) {
    mkdirSync(dirname(join(ROOT, path)), { recursive: true });
    writeFileSync(join(ROOT, path), text);
  }
  console.log(`wrote ${files.size} files`);
}
