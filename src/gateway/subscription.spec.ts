import { parseSubscription, SubscriptionError } from './subscription';

describe('parseSubscription', () => {
  const known = (id: string) => id === 'wa-sales' || id === 'bot-eu';
  const problems = (payload: unknown) => {
    try {
      parseSubscription(payload, known);
    } catch (err) {
      if (err instanceof SubscriptionError) return err.details;
      throw err;
    }
    throw new Error('accepted');
  };

  it('accepts omitted lists (everything), and dedupes what is given', () => {
    expect(parseSubscription(undefined, known)).toEqual({});
    expect(parseSubscription({}, known)).toEqual({});
    expect(parseSubscription({ channels: ['wa-sales', 'wa-sales'], types: ['chatbridge.message.*'] }, known)).toEqual({ channels: ['wa-sales'], types: ['chatbridge.message.*'] });
  });

  it('lists every problem with its field', () => {
    expect(problems('all')).toEqual(['(payload): must be an object']);
    expect(problems({ channels: 'wa-sales', types: ['ok', 'bad type!'], extra: 1 })).toEqual(expect.arrayContaining([
      'extra: unknown key', expect.stringMatching(/^channels: .*array/), expect.stringMatching(/^types: each value in types must be an event type or glob/),
    ]));
    expect(problems({ channels: ['bot-eu', 'gone'] })).toEqual(['channels[1]: unknown channel "gone"']);
  });
});
