import 'reflect-metadata';
import { ConfigError, loadConfig, type LoadConfigInput } from './config.loader';

/** The channel `inbound` block and `modeSwitch` settings (docs/modes.md). */
const zap = { url: 'http://127.0.0.1:1', instance: 'sales', apiKey: 'k' };
const smartsupp = { url: 'http://127.0.0.1:1', key: 'k' };

function problems(input: LoadConfigInput): string[] {
  try {
    loadConfig(input);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config: inbound auth and mode switching', () => {
  it('reads an inbound token block with its defaults, and modeSwitch defaults', () => {
    const { config } = loadConfig({
      env: { WA_INBOUND_TOKEN: 'inbound-token-0123456789' },
      raw: { channels: [{ id: 'wa', provider: 'zapthinker', mode: 'webhook', inbound: { token: '${WA_INBOUND_TOKEN}' }, zapthinker: zap }] },
    });
    expect(config.channels[0].inbound).toEqual({ token: 'inbound-token-0123456789', header: 'x-chatbridge-token', hmacHeader: 'x-signature', maxBodyBytes: 1048576, maxInFlight: 16, ackTimeoutMs: 10_000 });
    expect(config.modeSwitch).toEqual({ overlapMs: 600_000, connectWaitMs: 30_000 });
  });

  it('reads an HMAC block with a custom header and limit (numbers from ${VAR} too)', () => {
    const { config } = loadConfig({
      env: { LIMIT: '4096' },
      raw: {
        modeSwitch: { overlapMs: 5000 },
        channels: [{ id: 'wa', provider: 'zapthinker', inbound: { hmacSecret: 'secret-0123456789abc', hmacHeader: 'x-hub-signature-256', maxBodyBytes: '${LIMIT}' }, zapthinker: zap }],
      },
    });
    expect(config.channels[0]).toMatchObject({ mode: 'socket', inbound: { hmacSecret: 'secret-0123456789abc', hmacHeader: 'x-hub-signature-256', maxBodyBytes: 4096 } });
    expect(config.modeSwitch.overlapMs).toBe(5000);
  });

  it('webhook mode without inbound auth is refused with its path, so no channel ever accepts unauthenticated posts', () => {
    expect(problems({ raw: { channels: [{ id: 'wa', provider: 'zapthinker', mode: 'webhook', zapthinker: zap }] } })).toEqual([
      'channels[0].inbound: required when mode is webhook (a token or an hmacSecret the upstream sends with every post)',
    ]);
  });

  it('lists every inbound problem at once, never with the secret values', () => {
    const found = problems({
      raw: {
        modeSwitch: { overlapMs: -1, colour: 1 },
        channels: [
          { id: 'a', provider: 'zapthinker', mode: 'webhook', inbound: {}, zapthinker: zap },
          { id: 'b', provider: 'zapthinker', inbound: { token: 'short-secret', hmacSecret: 'another-secret-0123456789' }, zapthinker: zap },
          { id: 'c', provider: 'zapthinker', inbound: { token: 'inbound-token-0123456789', header: 'bad header', maxBodyBytes: 10, maxInFlight: 0, extra: 1 }, zapthinker: zap },
          { id: 'd', provider: 'smartsupp', mode: 'webhook', smartsupp },
          { id: 'e', provider: 'smartsupp', inbound: { token: 'inbound-token-0123456789' }, smartsupp },
          { id: 'f', provider: 'zapthinker', inbound: 'yes', zapthinker: zap },
        ],
      },
    });
    expect(found).toEqual(expect.arrayContaining([
      'modeSwitch.overlapMs: must not be less than 0',
      'modeSwitch.colour: unknown key',
      'channels[0].inbound: set exactly one of token or hmacSecret',
      'channels[1].inbound.token: must be at least 16 characters',
      'channels[1].inbound: set exactly one of token or hmacSecret',
      'channels[2].inbound.header: must be an HTTP header name',
      'channels[2].inbound.maxBodyBytes: must not be less than 1024',
      'channels[2].inbound.maxInFlight: must not be less than 1',
      'channels[2].inbound.extra: unknown key',
      'channels[3].mode: provider smartsupp has no webhook API; only socket mode is possible',
      'channels[4].inbound: provider smartsupp has no webhook API; remove this block',
      'channels[5].inbound: must be a mapping',
    ]));
    expect(found).toHaveLength(12);
    expect(found.join('\n')).not.toMatch(/short-secret|another-secret/);
  });
});
