import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiagnosticSeverity, fromFile, Parser } from '@asyncapi/parser';
import { ASYNCAPI_PATH, generatedFiles, SCHEMAS_DIR } from '../../scripts/asyncapi';
import { createBridgeEvent, createEvent, DATA_SCHEMAS, toStructured } from '../../src/envelope/envelope';
import { EVENT_TYPES } from '../../src/envelope/event-types';
import { fromKafkaMessage, toKafkaMessage } from '../../src/sinks/kafka/kafka.record';
import { dataSchemaProblem, eventSchemaProblem } from '../helpers/event-schemas';

/*
 * docs/asyncapi.yaml and docs/schemas/ are generated (`npm run asyncapi`): they must be what the types generate now,
 * and valid. That events really match them is checked by every e2e spec that reads events through the shared readers
 * (test/helpers/event-schemas.ts).
 */

const ROOT = join(__dirname, '..', '..');

describe('the generated event schemas and AsyncAPI document', () => {
  let files: Map<string, string>;
  beforeAll(() => {
    files = generatedFiles();
  }, 120_000);

  it('are checked in as generated (run `npm run asyncapi` after changing the types)', () => {
    const stale = [...files].filter(([path, text]) => readFileSync(join(ROOT, path), { encoding: 'utf8', flag: 'r' }) !== text).map(([path]) => path);
    expect(stale).toEqual([]);
    // One schema per event type, and no schema of a type that no longer exists.
    expect(readdirSync(join(ROOT, SCHEMAS_DIR)).sort()).toEqual(EVENT_TYPES.map((t) => `${t}.json`).sort());
  });

  it('is a valid AsyncAPI 3.0 document whose references all resolve', async () => {
    const { document, diagnostics } = await fromFile(new Parser(), join(ROOT, ASYNCAPI_PATH)).parse();
    expect(diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error)).toEqual([]);
    expect(document?.version()).toBe('3.0.0');
    const channels = document!.channels().all().map((c) => c.address());
    expect(channels).toEqual(expect.arrayContaining(['chatbridge.events', 'chatbridge.commands', 'chatbridge.dlq', '/v1', null]));
    // Every binary-mode message's payload is its type's data schema, resolved from the schema file.
    const received = document!.messages().all().find((m) => m.id() === 'chatbridge.message.received.binary');
    expect(received?.payload()?.required()).toEqual(['channel', 'message', 'upstream']);
  }, 60_000);

  it('accept what createEvent builds, in every form, and refuse an event that breaks its type', () => {
    const { event } = createEvent({
      type: 'chatbridge.typing', channelId: 'wa-sales', provider: 'zapthinker', conversationId: 'c1',
      data: { channel: { id: 'wa-sales', provider: 'zapthinker' }, conversation: { id: 'c1' }, typing: { active: true }, upstream: { event: 'presence.update', payload: {} } },
    });
    expect(event.dataschema).toBe('https://chatbridge.dev/schemas/chatbridge.typing.json#/properties/data');
    expect(eventSchemaProblem(JSON.parse(toStructured(event)))).toBeUndefined();
    const record = toKafkaMessage(event);
    expect(dataSchemaProblem(record.headers?.ce_dataschema as string, JSON.parse(record.value as string))).toBeUndefined();
    expect(eventSchemaProblem(fromKafkaMessage({ ...record, key: record.key as string }))).toBeUndefined();
    const own = createBridgeEvent('chatbridge.webhook.status', 'webhooks', 'crm', { webhook: { id: 'crm', url: 'https://example.test/hook' }, status: { state: 'disabled', previous: 'active', reason: 'gone', httpStatus: 410 } });
    expect(eventSchemaProblem(own.event)).toBeUndefined();

    expect(eventSchemaProblem({ ...event, data: { ...event.data, typing: { active: 'yes' } } })).toMatch(/typing\/active must be boolean/);
    expect(eventSchemaProblem({ ...event, colour: 'red' })).toMatch(/additional properties \(colour\)/);
    expect(eventSchemaProblem({ ...event, dataschema: DATA_SCHEMAS['chatbridge.read'] })).toMatch(/dataschema must be equal to constant/);
  });
});
