import { parseSubscription, SubscriptionError } from './subscription';

describe('parseSubscription', () => {
  const known = (id: string) => id === 'wa-sales' || id === 'bot-eu';
  const limits = { maxPatterns: 3, maxPatternLength: 30 };
  const refusal = (payload: unknown): SubscriptionError => {
    try {
      parseSubscription(payload, known, limits);
    } catch (err) {
      if (err instanceof SubscriptionError) return err;
      throw err;
    }
    throw new Error('accepted');
  };
  const problems = (payload: unknown) => refusal(payload).details;

  it('lists every problem with its field, as a 400 that is not worth retrying as is', () => {
    expect(problems('all')).toEqual(['(payload): must be an object']);
    expect(problems(['wa-sales'])).toEqual(['(payload): must be an object']);
    expect(problems({ channels: 'wa-sales', types: ['ok', 'bad type!', 7], extra: 1 })).toEqual([
      'extra: unknown key', 'channels: must be an array of strings', 'types[1]: must be an event type or glob (letters, digits, . _ - *)', 'types[2]: must be a string',
    ]);
    expect(problems({ channels: ['bot-eu', 'gone', 'Bad!'] })).toEqual(['channels[1]: unknown channel "gone"', 'channels[2]: must be a channel id ([a-z0-9-]{1,64})']);
    expect(refusal({ types: [''] })).toMatchObject({ statusCode: 400, reason: 'invalid', retriable: false, message: expect.stringMatching(/^invalid subscription/) });
  });

  it('refuses more patterns, or longer ones, than the limits allow, naming the config key', () => {
    expect(refusal({ types: ['a', 'b', 'c', 'd'] })).toMatchObject({ statusCode: 400, reason: 'pattern_limit', details: ['types: at most 3 patterns (api.stream.maxPatterns); got 4'] });
    expect(refusal({ types: [`${'*'.repeat(30)}Z`] })).toMatchObject({ reason: 'pattern_limit', details: ['types[0]: at most 30 characters (api.stream.maxPatternLength); got 31'] });
    // Within the limits, the 25-star glob is an ordinary pattern: the matcher is linear.
    expect(parseSubscription({ types: [`${'*'.repeat(25)}Z`] }, known, limits)).toEqual({ types: [`${'*'.repeat(25)}Z`] });
  });

  it('answers any payload with a subscription or a small SubscriptionError, never anything else', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = { types: [deep] };
    const huge = Array.from({ length: 200_000 }, (_, i) => i);
    const hostile: unknown[] = [
      deep, { types: deep }, { types: huge }, { channels: huge }, { types: new Array(50) }, Object.fromEntries(huge.slice(0, 5000).map((i) => [`k${i}`, i])),
      { ['k'.repeat(100_000)]: 1 }, { types: [{ toString: 1 }] }, JSON.parse('{"__proto__": {"types": 1}, "constructor": 2}'), 42, true, 'x', Symbol('s'),
    ];
    for (const payload of hostile) {
      const err = refusal(payload);
      expect(err.details!.length).toBeLessThanOrEqual(21);
      expect(JSON.stringify(err.details).length).toBeLessThan(4096);
    }
    expect(problems({ types: huge })?.at(-1)).toMatch(/^… and \d+ more$/);
  });

  it('accepts omitted lists (everything), and dedupes what is given', () => {
    expect(parseSubscription(undefined, known, limits)).toEqual({});
    expect(parseSubscription({}, known, limits)).toEqual({});
    expect(parseSubscription({ types: [] }, known, limits)).toEqual({ types: [] });
    expect(parseSubscription({ channels: ['wa-sales', 'wa-sales'], types: ['chatbridge.message.*'] }, known, limits)).toEqual({ channels: ['wa-sales'], types: ['chatbridge.message.*'] });
  });
});
