import { createBridgeEvent, createEvent, type AnyCanonicalEvent } from '../../envelope/envelope';
import { MAX_REPLAY_LIMIT, parseReplayRequest, ReplayRequestError, type ReplayQuery } from './webhook.replay.dto';
import { isReplayableEvent, offerDlqRecord, parseDeadLetterLine, ReplaySelection } from './webhook.replay';

function event(n: number, conversation = 'c1'): AnyCanonicalEvent {
  return createEvent({
    type: 'chatbridge.message.received', channelId: 'wa', provider: 'zapthinker', upstreamKey: `m${n}`, conversationId: conversation,
    data: { channel: { id: 'wa', provider: 'zapthinker' }, conversation: { id: conversation }, message: { direction: 'inbound', text: `m${n}` }, upstream: { event: 'test', payload: null } },
  }).event;
}

const T0 = Date.parse('2025-06-05T14:00:00.000Z');
const query = (q: Partial<ReplayQuery>): ReplayQuery => ({ limit: MAX_REPLAY_LIMIT, ...q });
const ids = (events: AnyCanonicalEvent[]) => events.map((e) => e.id);

describe('parseReplayRequest', () => {
  function problems(body: unknown): string[] {
    try {
      parseReplayRequest(body);
    } catch (err) {
      if (err instanceof ReplayRequestError) return err.details;
      throw err;
    }
    throw new Error('accepted');
  }

  it('reads times as epoch ms, ids as a set, and defaults the limit', () => {
    expect(parseReplayRequest({ from: '2025-06-05T14:00:00Z', to: '2025-06-05T16:00:00.500+02:00', ids: ['a', 'b'] })).toEqual({
      from: T0, to: T0 + 500, ids: new Set(['a', 'b']), limit: MAX_REPLAY_LIMIT,
    });
    expect(parseReplayRequest({ ids: ['x'], limit: 5 }).limit).toBe(5);
  });

  it('refuses a body that names neither a time nor ids: replaying everything is never an accident', () => {
    expect(problems({})[0]).toMatch(/at least one of from, to or ids/);
    expect(problems({ limit: 10 })[0]).toMatch(/at least one of from, to or ids/);
    expect(problems(undefined)[0]).toMatch(/must be a JSON object/);
    expect(problems([{ ids: ['a'] }])[0]).toMatch(/must be a JSON object/);
  });

  it('lists every invalid field, once each', () => {
    expect(problems({ from: 'yesterday', to: '2025-06-05T14:00:00', ids: 'abc', limit: 0, everything: true }).sort()).toEqual([
      'everything: unknown key',
      'from: must be an ISO 8601 time with a zone, e.g. 2025-06-05T14:00:00Z',
      'ids: must be an array',
      'limit: must not be less than 1',
      'to: must be an ISO 8601 time with a zone, e.g. 2025-06-05T14:00:00Z',
    ]);
    expect(problems({ ids: [] })).toEqual(['ids: should not be empty']);
    expect(problems({ ids: ['ok', 'has.dot'] })).toEqual(['ids: each id must be 1..256 characters without spaces or dots']);
    expect(problems({ ids: Array.from({ length: 10_001 }, (_, i) => `id${i}`) })).toEqual(['ids: must contain no more than 10000 elements']);
    expect(problems({ ids: ['a'], limit: '5' })).toEqual(['limit: must be an integer number']);
    expect(problems({ from: '2025-06-05T14:00:00Z', to: '2025-06-05T14:00:00Z' })).toEqual(['to: must be later than from']);
  });
});

describe('parseDeadLetterLine', () => {
  it('reads the JSON line the dead-letter file holds', () => {
    const e = event(1);
    expect(parseDeadLetterLine(JSON.stringify({ at: '2025-06-05T14:00:00.000Z', reason: 'webhook_rejected', origin: 'crm', channelId: 'wa', event: e, attempts: 1, status: 400 }))).toEqual({ origin: 'crm', at: T0, event: e, reason: 'webhook_rejected', attempts: 1, status: 400 });
    // A fact of the wrong type is left out, not guessed.
    expect(parseDeadLetterLine(JSON.stringify({ at: '2025-06-05T14:00:00.000Z', origin: 'crm', event: e, attempts: '1', status: null }))).toEqual({ origin: 'crm', at: T0, event: e });
  });

  it('calls unreadable lines malformed and blank lines nothing', () => {
    expect(parseDeadLetterLine('{"at": "2025-06-05T14:00:00Z", "origin": "crm", "ev')).toBe('malformed');
    expect(parseDeadLetterLine('[1,2]')).toBe('malformed');
    expect(parseDeadLetterLine('"text"')).toBe('malformed');
    expect(parseDeadLetterLine(JSON.stringify({ at: 'not a time', origin: 'crm' }))).toBe('malformed');
    expect(parseDeadLetterLine(JSON.stringify({ at: '2025-06-05T14:00:00Z' }))).toBe('malformed');
    expect(parseDeadLetterLine('   ')).toBeUndefined();
  });
});

describe('isReplayableEvent', () => {
  it('accepts a canonical event and refuses what a webhook could not carry', () => {
    const e = event(1);
    expect(isReplayableEvent(e)).toBe(true);
    expect(isReplayableEvent({ ...e, id: 'a.b' })).toBe(false);
    expect(isReplayableEvent({ ...e, partitionkey: undefined })).toBe(false);
    expect(isReplayableEvent({ ...e, specversion: '0.3' })).toBe(false);
    expect(isReplayableEvent(null)).toBe(false);
    expect(isReplayableEvent({ event: 'messages.upsert', payload: {} })).toBe(false);
  });

  it('accepts the bridge\'s own events, which have no channel', () => {
    const { event: status } = createBridgeEvent('chatbridge.webhook.status', 'webhooks', 'erp', { webhook: { id: 'erp', url: 'http://x/h' }, status: { state: 'disabled', previous: 'active', reason: 'gone', httpStatus: 410 } });
    expect(isReplayableEvent(status)).toBe(true);
  });
});

describe('ReplaySelection', () => {
  it("keeps only the endpoint's dead letters inside [from, to), oldest first", () => {
    const s = new ReplaySelection('crm', query({ from: T0, to: T0 + 3000 }));
    const [e0, e1, e2, e3, e4] = [0, 1, 2, 3, 4].map((n) => event(n));
    s.offer('file', { origin: 'crm', at: T0 - 1, event: e0 });
    s.offer('file', { origin: 'crm', at: T0 + 2000, event: e2 });
    s.offer('kafka', { origin: 'crm', at: T0, event: e1 });
    s.offer('file', { origin: 'crm', at: T0 + 3000, event: e3 });
    s.offer('file', { origin: 'erp', at: T0 + 1000, event: e4 });
    expect(ids(s.pick(100).events)).toEqual(ids([e1, e2]));
    expect(s.matched).toBe(2);
    expect(s.sources).toEqual({ file: 1, kafka: 1 });
  });

  it('keeps only the ids named, at any time', () => {
    const s = new ReplaySelection('crm', query({ ids: new Set([event(2).id, event(9).id]) }));
    for (let n = 0; n < 5; n++) s.offer('file', { origin: 'crm', at: T0 + n, event: event(n) });
    expect(ids(s.pick(100).events)).toEqual([event(2).id]);
    expect(s.matched).toBe(1);
  });

  it('replays an event found twice (both sources, or dead-lettered again) once, at its earliest time', () => {
    const s = new ReplaySelection('crm', query({ from: T0 }));
    const [a, b] = [event(1), event(2)];
    s.offer('file', { origin: 'crm', at: T0 + 50, event: a });
    s.offer('file', { origin: 'crm', at: T0 + 20, event: b });
    s.offer('kafka', { origin: 'crm', at: T0 + 10, event: a });
    s.offer('file', { origin: 'crm', at: T0 + 90, event: b });
    expect(ids(s.pick(100).events)).toEqual(ids([a, b]));
    expect(s.matched).toBe(2);
    expect(s.sources).toEqual({ file: 3, kafka: 1 });
  });

  it('keeps the oldest `limit` events in bounded memory and counts every match', () => {
    const s = new ReplaySelection('crm', query({ from: T0, limit: 3 }));
    // Newest first, the worst order for a bounded selection.
    for (let n = 20; n > 0; n--) s.offer('kafka', { origin: 'crm', at: T0 + n, event: event(n) });
    expect(s.matched).toBe(20);
    expect(ids(s.pick(100).events)).toEqual(ids([event(1), event(2), event(3)]));
    expect(s.pick(2)).toEqual({ events: [event(1), event(2)].map((e) => expect.objectContaining({ id: e.id })), restFrom: T0 + 3 });
    expect(s.pick(100).restFrom).toBe(T0 + 4);
  });

  it('counts an unreadable event of this endpoint as malformed, and ignores those of others', () => {
    const s = new ReplaySelection('crm', query({ from: T0 }));
    s.offer('file', { origin: 'crm', at: T0, event: { id: 'x' } });
    s.offer('file', { origin: 'mapper', at: T0, event: undefined });
    expect(s.skippedMalformed).toBe(1);
    expect(s.matched).toBe(0);
  });
});

describe('offerDlqRecord', () => {
  it("parses the value of this endpoint's records only; an unparsable one is malformed", () => {
    const s = new ReplaySelection('crm', query({ from: T0 }));
    const e = event(1);
    offerDlqRecord(s, { origin: 'crm', timestamp: T0 + 5, value: JSON.stringify(e) });
    offerDlqRecord(s, { origin: 'crm', timestamp: T0 + 6, value: '{not json' });
    offerDlqRecord(s, { origin: 'erp', timestamp: T0 + 7, value: '{not json either' });
    offerDlqRecord(s, { timestamp: T0 + 8, value: JSON.stringify(event(2)) });
    expect(ids(s.pick(10).events)).toEqual([e.id]);
    expect(s.skippedMalformed).toBe(1);
    expect(s.sources).toEqual({ file: 0, kafka: 1 });
  });
});
