import type { CommandDoor, CommandFailure, CommandRecord, CommandStatus } from '../command.types';

const STATUSES: readonly CommandStatus[] = ['accepted', 'sending', 'sent', 'failed'];
const DOORS: readonly CommandDoor[] = ['http', 'socket.io', 'kafka'];

/** The ledger-topic value of a record (key = its commandId). */
export function encodeLedgerRecord(record: CommandRecord): string {
  return JSON.stringify(record);
}

/**
 * Reads a ledger-topic record back; throws an Error saying what is wrong. The key must be the record's commandId
 * (compaction keeps one record per key, so a mismatch would let one command's record replace another's). Unknown
 * fields are dropped (a later version may add some); known ones are checked, so the ledger never holds a record
 * it cannot answer from.
 */
export function decodeLedgerRecord(key: string | null, value: string | null): CommandRecord {
  if (key === null || key === '') throw new Error('record has no key (the key must be the commandId)');
  if (value === null) throw new Error('tombstone (no value)');
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    throw new Error('value is not JSON');
  }
  if (!isObject(v)) throw new Error('value is not a JSON object');
  const problems: string[] = [];
  const str = (field: string): string => {
    const x = v[field];
    if (typeof x === 'string' && x !== '') return x;
    problems.push(`${field}: must be a non-empty string`);
    return '';
  };
  const commandId = str('commandId');
  const channelId = str('channelId');
  const type = str('type');
  const fingerprint = str('fingerprint');
  const acceptedAt = str('acceptedAt');
  const updatedAt = str('updatedAt');
  const status = v.status as CommandStatus;
  if (!STATUSES.includes(status)) problems.push(`status: must be one of ${STATUSES.join(', ')}`);
  const door = v.door as CommandDoor;
  if (!DOORS.includes(door)) problems.push(`door: must be one of ${DOORS.join(', ')}`);
  const attempts = v.attempts;
  if (typeof attempts !== 'number' || !Number.isInteger(attempts) || attempts < 0) problems.push('attempts: must be an integer >= 0');
  for (const field of ['upstreamMessageId', 'conversationId'] as const) {
    if (v[field] !== undefined && typeof v[field] !== 'string') problems.push(`${field}: must be a string`);
  }
  if (v.error !== undefined && !isFailure(v.error)) problems.push('error: must be {code, message, mayHaveActed}');
  if (v.command !== undefined && !(isObject(v.command) && v.command.commandId === commandId && typeof v.command.type === 'string')) {
    problems.push('command: must be an object with the same commandId and a type');
  }
  if (commandId && commandId !== key) problems.push(`commandId: "${commandId}" differs from the record key "${key}"`);
  if (problems.length) throw new Error(problems.join('; '));

  const record: CommandRecord = { commandId, channelId, type, status, attempts: attempts as number, fingerprint, door, acceptedAt, updatedAt };
  if (typeof v.upstreamMessageId === 'string') record.upstreamMessageId = v.upstreamMessageId;
  if (typeof v.conversationId === 'string') record.conversationId = v.conversationId;
  if (v.error !== undefined) record.error = v.error as CommandFailure;
  if (v.command !== undefined) record.command = v.command as CommandRecord['command'];
  return record;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFailure(v: unknown): v is CommandFailure {
  return isObject(v) && typeof v.code === 'string' && typeof v.message === 'string' && typeof v.mayHaveActed === 'boolean';
}
