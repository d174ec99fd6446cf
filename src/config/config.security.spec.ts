import 'reflect-metadata';
import { ConfigError, loadConfig, MIN_API_TOKEN_LENGTH, type LoadConfigInput } from './config.loader';
import { MAX_TIMER_MS, timerProblems } from './timers';

function problems(input: LoadConfigInput): string[] {
  try {
    loadConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('loadConfig did not throw');
}

describe('loadConfig: API token length', () => {
  it('refuses tokens shorter than 16 characters, naming their positions and never their values', () => {
    const found = problems({ raw: {}, env: { CHATBRIDGE_API_TOKENS: 'long-enough-token-01,sh0rt,fifteen-chars-x' } });
    expect(found).toEqual([`CHATBRIDGE_API_TOKENS: tokens 2, 3 (counting from 1) shorter than ${MIN_API_TOKEN_LENGTH} characters; use long random tokens, e.g. \`openssl rand -hex 32\``]);
    expect(found.join('\n')).not.toMatch(/sh0rt|fifteen/);
  });

  it('accepts 16 characters and no tokens at all (the API is then closed)', () => {
    expect(loadConfig({ raw: {}, env: { CHATBRIDGE_API_TOKENS: 'sixteen-chars-ok' } }).config.apiTokens).toEqual(['sixteen-chars-ok']);
    expect(loadConfig({ raw: {}, env: {} }).config.apiTokens).toEqual([]);
  });
});

describe('loadConfig: timers', () => {
  const over = MAX_TIMER_MS + 1;

  it('lists every timer over 2^31-1 ms with its path: top level, nested, webhook lists and provider options', () => {
    const found = problems({
      env: { BIG: String(over) },
      raw: {
        shutdownGraceMs: over,
        reconnect: { maxDelayMs: '${BIG}' },
        dedupe: { ttlMs: 10 * MAX_TIMER_MS },
        webhooks: [{ id: 'crm', url: 'https://crm.example.com/hook', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', retrySchedule: [0, 1000, over] }],
        channels: [
          { id: 'support', provider: 'jwt-websocket', 'jwt-websocket': { url: 'wss://h/ws', token: 't', pingIntervalMs: over, tokenRefreshMarginMs: MAX_TIMER_MS } },
        ],
      },
    });
    const timers = found.filter((p) => p.includes('Node fires longer timers at once'));
    expect(timers.map((p) => p.slice(0, p.indexOf(': ')))).toEqual([
      'shutdownGraceMs', 'reconnect.maxDelayMs', 'dedupe.ttlMs', 'webhooks[0].retrySchedule[2]', 'channels[0].jwt-websocket.pingIntervalMs',
    ]);
    expect(timers[0]).toBe(`shutdownGraceMs: must be at most ${MAX_TIMER_MS} ms (about 24.8 days): Node fires longer timers at once`);
  });

  it('accepts 2^31-1 exactly and leaves fields not named *Ms alone', () => {
    expect(timerProblems({ a: { bMs: MAX_TIMER_MS, maxBytes: 10 * MAX_TIMER_MS, listMs: [1, MAX_TIMER_MS] }, c: 'text' })).toEqual([]);
    expect(timerProblems({ a: { bMs: 'not a number' } })).toEqual([]);
  });
});
