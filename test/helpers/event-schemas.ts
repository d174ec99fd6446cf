import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

/*
 * The per-type event schemas (docs/schemas/, docs/events.md#schemas) as the e2e readers check every event they see
 * against: the Kafka reader, the webhook receiver and the embedded-mode stdout lines. test/docs/asyncapi.spec.ts
 * keeps the files equal to what the types generate.
 */

const SCHEMAS_DIR = join(__dirname, '..', '..', 'docs', 'schemas');

let ajv: Ajv | undefined;

/** One ajv holding every schema under its `$id`, so a `dataschema` URI (with its `#/properties/data`) resolves. */
function schemas(): Ajv {
  if (ajv) return ajv;
  const a = new Ajv({ allErrors: true, strict: true });
  addFormats(a);
  for (const file of readdirSync(SCHEMAS_DIR).filter((f) => f.endsWith('.json'))) a.addSchema(JSON.parse(readFileSync(join(SCHEMAS_DIR, file), 'utf8')) as object);
  return (ajv = a);
}

function validator(uri: string): ValidateFunction {
  const v = schemas().getSchema(uri);
  if (!v) throw new Error(`no schema ${uri}`);
  return v;
}

function problems(v: ValidateFunction): string {
  return (v.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`).join('; ');
}

/** Why `event`, a structured CloudEvent of any chatbridge type, does not match its type's schema; undefined when it does. */
export function eventSchemaProblem(event: unknown): string | undefined {
  const type = (event as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !type.startsWith('chatbridge.')) return `not a chatbridge event: type ${JSON.stringify(type)}`;
  const v = validator(`https://chatbridge.dev/schemas/${type}.json`);
  return v(event) ? undefined : `${type} ${(event as { id?: string }).id}: ${problems(v)}`;
}

/** Why a binary-mode record's value does not match the schema its `ce_dataschema` header names; undefined when it does. */
export function dataSchemaProblem(dataschema: string | undefined, data: unknown): string | undefined {
  if (!dataschema) return 'no ce_dataschema header';
  const v = validator(dataschema);
  return v(data) ? undefined : `${dataschema}: ${problems(v)}`;
}

/** Throws with every problem collected by a reader, naming it. */
export function throwSchemaProblems(where: string, found: readonly string[]): void {
  if (found.length) throw new Error(`${where}: ${found.length} event(s) do not match their schema (docs/schemas): ${found.slice(0, 5).join(' | ')}`);
}
