import { decodeCursor, DeadLetterPageSelection, encodeCursor } from './webhook.dead-letters';

const T0 = Date.parse('2025-06-05T14:00:00Z');
const letter = (n: number, at = T0 + n) => ({ origin: 'crm', at, event: { id: `e${n}`, type: 'chatbridge.message.received' }, reason: 'webhook_rejected', attempts: 2, status: 500 });

/** Every page of `offers` (fed in the given order each time), as the API pages through them. */
function pages(offers: Array<['file' | 'kafka', ReturnType<typeof letter>]>, limit: number): string[][] {
  const out: string[][] = [];
  let cursor: ReturnType<typeof decodeCursor>;
  for (;;) {
    const selection = new DeadLetterPageSelection('crm', { limit, ...(cursor ? { cursor } : {}) });
    for (const [source, entry] of offers) selection.offer(source, entry);
    const page = selection.page();
    out.push(page.deadLetters.map((d) => `${d.source}:${d.id}`));
    if (!page.nextCursor) return out;
    cursor = decodeCursor(page.nextCursor);
  }
}

describe('DeadLetterPageSelection', () => {
  it('pages through every dead letter of the endpoint in (time, source, id) order, whatever the order read, in bounded memory', () => {
    const offers: Array<['file' | 'kafka', ReturnType<typeof letter>]> = [];
    // 25 letters read newest first, two sources, one tie in time across sources, and another endpoint's.
    for (let n = 25; n >= 1; n--) offers.push([n % 2 ? 'kafka' : 'file', letter(n)]);
    offers.push(['file', letter(7, T0 + 7)], ['kafka', { ...letter(99), origin: 'erp' }]);
    const all = pages(offers, 4);
    expect(all.map((p) => p.length)).toEqual([4, 4, 4, 4, 4, 4, 2]);
    const flat = all.flat();
    expect(flat.slice(0, 8)).toEqual(['kafka:e1', 'file:e2', 'kafka:e3', 'file:e4', 'kafka:e5', 'file:e6', 'file:e7', 'kafka:e7']);
    expect(new Set(flat).size).toBe(26);
  });

  it('keeps the facts a dead letter recorded and counts the unreadable ones', () => {
    const s = new DeadLetterPageSelection('crm', { limit: 10 });
    s.offer('file', letter(1));
    s.offer('file', { origin: 'crm', at: T0, event: { id: 42 } });
    s.offer('kafka', { origin: 'crm', at: T0, event: null });
    s.malformed();
    expect(s.page()).toEqual({
      endpoint: 'crm', skippedMalformed: 3,
      deadLetters: [{ id: 'e1', type: 'chatbridge.message.received', at: '2025-06-05T14:00:00.001Z', reason: 'webhook_rejected', attempts: 2, lastStatus: 500, source: 'file' }],
    });
  });

  it('reads back only the cursors it made', () => {
    expect(decodeCursor(encodeCursor([T0, 'kafka', 'e1']))).toEqual([T0, 'kafka', 'e1']);
    for (const bad of ['', 'bm90LWEtY3Vyc29y', Buffer.from('[1,"disk","e1"]').toString('base64url'), Buffer.from('{"at":1}').toString('base64url')]) {
      expect(decodeCursor(bad)).toBeUndefined();
    }
  });
});
