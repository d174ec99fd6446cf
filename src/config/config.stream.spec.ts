import 'reflect-metadata';
import { ConfigError, loadConfig, type LoadConfigInput } from './config.loader';

/** `api.stream`: the live stream's limits, whose glob limits also hold for webhook `types` at load. */
const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const hook = (types: unknown) => ({ id: 'crm', url: 'http://127.0.0.1:1/h', secret, types });

function problems(input: LoadConfigInput): string[] {
  try {
    loadConfig(input);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config: api.stream', () => {
  it('refuses webhook type globs past the stream\'s glob limits, with their keys', () => {
    expect(problems({ raw: { webhooks: [hook(Array.from({ length: 51 }, (_, i) => `t${i}.*`))] } })).toEqual(['webhooks[0].types: at most 50 patterns (api.stream.maxPatterns); got 51']);
    expect(problems({ raw: { webhooks: [hook(['ok.*', `${'*'.repeat(200)}Z`])] } })).toEqual(['webhooks[0].types[1]: at most 200 characters (api.stream.maxPatternLength); got 201']);
    expect(problems({ raw: { api: { stream: { maxPatterns: 1, maxPatternLength: 5 } }, webhooks: [hook(['a.*', 'chatbridge.*'])] } })).toEqual([
      'webhooks[0].types: at most 1 patterns (api.stream.maxPatterns); got 2', 'webhooks[0].types[1]: at most 5 characters (api.stream.maxPatternLength); got 12',
    ]);
    expect(problems({ raw: { api: { stream: { maxSubscribers: 0, maxPatterns: 'lots' } } } })).toEqual(['api.stream.maxPatterns: must be an integer number', 'api.stream.maxSubscribers: must not be less than 1']);
  });

  it('has documented defaults, and takes the 25-star glob in a webhook filter (the matcher is linear)', () => {
    const { config } = loadConfig({ raw: { webhooks: [hook([`${'*'.repeat(25)}Z`])] } });
    expect(config.api.stream).toEqual({ maxBufferedEvents: 1000, maxBufferedBytes: 4 * 1024 * 1024, maxPatterns: 50, maxPatternLength: 200, maxSubscribersPerToken: 100, maxSubscribers: 500 });
  });
});
