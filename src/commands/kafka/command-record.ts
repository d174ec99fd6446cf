import { describeError } from '../../common/errors';
import { CommandRequestError } from '../command.types';

/** A record of `topics.commands` read as a command: the parsed JSON body and the channel id from the key. */
export type ParsedCommandRecord = { ok: true; body: unknown; channelId?: string } | { ok: false; error: string };

/** What the consumer does with a record the command service refused. */
export type Refusal =
  /** Permanent (400/404/409/422): dead-letter it, then commit past it; sending it again cannot succeed. */
  | { action: 'dead_letter'; code: string; status?: number; error: string }
  /** Transient (503, or an unexpected error): keep it uncommitted and offer it again after a backoff. */
  | { action: 'retry'; code: string; error: string };

/**
 * Reads one record of the commands topic: value = the command JSON (docs/commands.md, plus `channelId`), key = the channel id
 * (or, for a record a replica forwarded to a spread conversation's holder, `<channelId>/<conversationId>`: channel ids
 * hold no `/`). An empty key means "take the body's channelId"; a key and a body that disagree are refused by the service.
 * Total: any input gives a result, never an exception (the consumer dead-letters what is not `ok`). Size and depth
 * are the service's to judge, the same on every door.
 */
export function parseCommandRecord(key: Buffer | null, value: Buffer | null): ParsedCommandRecord {
  if (!Buffer.isBuffer(value) || !value.length) return { ok: false, error: 'record has no value (expected the command as JSON)' };
  let channelId: string | undefined;
  let text: string;
  try {
    channelId = Buffer.isBuffer(key) && key.length ? key.toString('utf8').split('/')[0] : undefined;
    text = value.toString('utf8');
  } catch (err) {
    return { ok: false, error: `record cannot be read as text: ${describeError(err)}` };
  }
  try {
    return { ok: true, body: JSON.parse(text) as unknown, channelId };
  } catch (err) {
    return { ok: false, error: `value is not JSON: ${describeError(err)}` };
  }
}

/** Decides by the refusal's status, never by its text: only a 503 (busy, ledger down, shutting down) can pass later. */
export function classifyRefusal(err: unknown): Refusal {
  if (err instanceof CommandRequestError) {
    const error = `${err.code}: ${err.message}${err.details?.length ? ` (${err.details.join('; ')})` : ''}`;
    return err.status >= 500 ? { action: 'retry', code: err.code, error } : { action: 'dead_letter', code: err.code, status: err.status, error };
  }
  // Not a refusal of this command (a bug, a dependency down): keeping the record loses nothing.
  return { action: 'retry', code: 'unexpected_error', error: describeError(err) };
}
