/**
 * JSON Schemas from the TypeScript types, for scripts/asyncapi.ts: one per event type (docs/schemas) and the socket.io
 * messages' types. One ts-json-schema-generator program over the sources below serves every schema of a run.
 */
import { join } from 'node:path';
import ts from 'typescript';
import {
  createFormatter, createParser, createProgram, DEFAULT_CONFIG, LiteralType, SchemaGenerator, UnionType,
  type BaseType, type CompletedConfig, type SubNodeParser,
} from 'ts-json-schema-generator';
import { DATA_SCHEMAS, SCHEMA_BASE_URI } from '../src/envelope/envelope';
import { EVENT_TYPES, type EventType } from '../src/envelope/event-types';

const ROOT = join(__dirname, '..');

/** The files the TypeScript types come from (and what they import). */
const TYPE_SOURCES = [
  'src/envelope/envelope.ts',
  'src/gateway/events.gateway.ts',
  'src/gateway/event-stream.ts',
  'src/gateway/gateway-errors.ts',
  'src/commands/command.types.ts',
];

export type Json = Record<string, unknown>;

/**
 * `keyof typeof X` of a constant object (ProviderName is `keyof typeof PROVIDER_REGISTRY`): the checker already knows
 * the keys, while the generator would parse the whole object's values (the provider definitions) and fail.
 */
class KeyofTypeofParser implements SubNodeParser {
  constructor(private readonly checker: ts.TypeChecker) {}

  supportsNode(node: ts.Node): boolean {
    return ts.isTypeOperatorNode(node) && node.operator === ts.SyntaxKind.KeyOfKeyword && ts.isTypeQueryNode(node.type);
  }

  createType(node: ts.Node): BaseType {
    const type = this.checker.getTypeFromTypeNode(node as ts.TypeNode);
    const members = type.isUnion() ? type.types : [type];
    return new UnionType(members.map((m) => {
      if (!m.isStringLiteral()) throw new Error(`keyof typeof: ${this.checker.typeToString(m)} is not a string literal`);
      return new LiteralType(m.value);
    }));
  }
}

/** The generator of the run under way (`endRun` drops it: its program is large). */
let generator: SchemaGenerator | undefined;

/** Ends a run: the next schema builds a fresh program (the types may have changed). */
export function endRun(): void {
  generator = undefined;
}

/** JSON Schemas (draft-07) of the named exported TypeScript types, each with the definitions it references. */
export function typeSchemas(names: readonly string[]): Record<string, Json> {
  generator ??= schemaGenerator();
  const g = generator;
  return Object.fromEntries(names.map((name) => [name, g.createSchema(name) as Json]));
}

/** One program over TYPE_SOURCES (and what they import) for every schema of a run: building it is most of the time. */
function schemaGenerator(): SchemaGenerator {
  const config: CompletedConfig = {
    ...DEFAULT_CONFIG,
    path: join(ROOT, `{${TYPE_SOURCES.join(',')}}`),
    tsconfig: join(ROOT, 'tsconfig.json'),
    skipTypeCheck: true, // `npm run lint` type-checks; this only reads the types
    topRef: false,
    encodeRefs: false,
  };
  const program = createProgram(config);
  const parser = createParser(program, config, (p) => p.addNodeParser(new KeyofTypeofParser(program.getTypeChecker())));
  return new SchemaGenerator(program, parser, createFormatter(config), config);
}

/** Every `$ref` target of the form `<prefix><name>` in `value`. */
export function refNames(value: unknown, prefix: string, into = new Set<string>()): Set<string> {
  JSON.stringify(value, (key, v: unknown) => {
    if (key === '$ref' && typeof v === 'string' && v.startsWith(prefix)) into.add(v.slice(prefix.length));
    return v;
  });
  return into;
}

/** `roots` plus the definitions they reach, transitively, out of `all`. */
export function reachable(roots: Iterable<string>, all: Record<string, unknown>, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const todo = [...roots];
  for (let name = todo.pop(); name !== undefined; name = todo.pop()) {
    if (name in out) continue;
    if (!(name in all)) throw new Error(`no schema for ${prefix}${name}`);
    out[name] = all[name];
    todo.push(...refNames(all[name], prefix));
  }
  return Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]]));
}

/**
 * One schema per event type: the CloudEvent attributes and extensions (from `CanonicalEvent`) with `type` and
 * `dataschema` fixed to the type's, and `data` (from the event map). Its `$id` is `<SCHEMA_BASE_URI><type>.json`, and
 * its `#/properties/data` is what the events' `dataschema` names.
 */
export function eventSchemas(): Record<EventType, Json> {
  const { AnyCanonicalEvent: union } = typeSchemas(['AnyCanonicalEvent']);
  const definitions = union.definitions as Record<string, Json>;
  const members = (union.anyOf as Json[]).map((ref) => definitions[String(ref.$ref).slice('#/definitions/'.length)]);
  const out = {} as Record<EventType, Json>;
  for (const type of EVENT_TYPES) {
    const member = members.find((m) => (m.properties as Record<string, Json>).type.const === type);
    if (!member) throw new Error(`AnyCanonicalEvent has no member of type ${type}`);
    const properties = { ...(member.properties as Record<string, Json>) };
    properties.dataschema = { ...properties.dataschema, const: DATA_SCHEMAS[type] };
    out[type] = {
      $schema: union.$schema,
      $id: `${SCHEMA_BASE_URI}${type}.json`,
      title: type,
      ...member,
      description: `A \`${type}\` CloudEvent in structured JSON (docs/events.md), as a webhook body, a stdout line, a socket.io \`event\` `
        + 'or a structured-mode Kafka record carries it. In binary mode the Kafka record value is `data` (`#/properties/data`, '
        + 'what the `dataschema` attribute names) and the other attributes are `ce_` headers (docs/kafka.md).',
      properties,
      definitions: reachable(refNames(properties, '#/definitions/'), definitions, '#/definitions/'),
    };
  }
  return out;
}
