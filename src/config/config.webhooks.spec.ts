import 'reflect-metadata';
import { configError, SECRET, zap } from './__fixtures__/config.fixture';
import { loadConfig } from './config.loader';

/** loadConfig: the `webhooks` endpoints (docs/webhooks.md). */
describe('loadConfig: webhooks', () => {
  const secret = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;

  it('loads endpoints with every default (docs/webhooks.md schedule) and converts ${VAR} numbers, also in lists', () => {
    const { config } = loadConfig({
      env: { CRM_SECRET: secret, T: '2500', D: '1000' },
      raw: { webhooks: [{ id: 'crm', url: 'https://crm.example.com/hooks/chat', secret: '${CRM_SECRET}', types: ['chatbridge.message.*'], channels: ['wa-sales'] }, { id: 'ops', url: 'http://10.0.0.5:8080/h', secret, timeoutMs: '${T}', retrySchedule: [0, '${D}'] }] },
    });
    expect(config.webhooks[0]).toEqual({
      id: 'crm', url: 'https://crm.example.com/hooks/chat', secret, types: ['chatbridge.message.*'], channels: ['wa-sales'],
      timeoutMs: 15_000, concurrency: 8, maxPending: 10_000,
      retrySchedule: [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
      circuitBreaker: { failures: 10, halfOpenAfterMs: 30_000 }, startFrom: 'latest',
    });
    expect(config.webhooks[1]).toMatchObject({ timeoutMs: 2500, retrySchedule: [0, 1000] });
    expect(loadConfig({ env: {}, raw: {} }).config.webhooks).toEqual([]);
  });

  it('takes an empty previousSecret as none, accepts in-cluster URLs, and warns about filters on unknown channels', () => {
    const { config, warnings } = loadConfig({
      env: {},
      raw: {
        channels: [{ id: 'wa-sales', provider: 'zapthinker', zapthinker: zap({ apiKey: 'k' }) }],
        webhooks: [
          { id: 'a', url: 'http://crm:8080/hook', secret, previousSecret: '${OLD_SECRET:-}', channels: ['wa-sales', 'wa-slaes'] },
          { id: 'b', url: 'http://localhost/h?tenant=1', secret },
          { id: 'c', url: 'https://[::1]:8443/h', secret },
        ],
      },
    });
    expect(config.webhooks[0].previousSecret).toBeUndefined();
    expect(config.webhooks.map((w) => w.id)).toEqual(['a', 'b', 'c']);
    expect(warnings).toEqual(['webhooks[0].channels[1]: no channel "wa-slaes" is configured; this filter entry matches nothing']);
  });

  it("refuses an id the bridge's own dead letters use as their origin (replay and the listing match on it)", () => {
    const err = configError({ env: {}, raw: { webhooks: [{ id: 'kafka', url: 'https://a.example.com', secret }, { id: 'kafka-sink', url: 'https://b.example.com', secret }] } });
    expect(err.problems).toEqual([
      'webhooks[0].id: "kafka" is reserved (the bridge\'s own dead letters use it as their origin; replay and the dead-letter listing would take them for this endpoint\'s)',
    ]);
  });

  it('reports every problem with its path, and never a secret', () => {
    const leaked = `whsec_${SECRET}`;
    const err = configError({
      env: {},
      raw: {
        webhooks: [
          { id: 'CRM', url: 'ftp://crm.example.com', secret: leaked, previousSecret: `whsec_${Buffer.alloc(8).toString('base64')}`, types: ['a b'], concurrency: 0, retrySchedule: [5, 'x'], colour: 1 },
          { id: 'dup', url: 'https://a.example.com', secret: '${MISSING_SECRET}' },
          { id: 'dup', url: 'https://a.example.com', secret, retrySchedule: [], circuitBreaker: { failures: 0 } },
          'just a string',
        ],
      },
    });
    expect([...err.problems].sort()).toEqual(
      [
        'webhooks[0].colour: unknown key',
        'webhooks[0].id: must match [a-z0-9-]{1,64}',
        'webhooks[0].url: must be an http:// or https:// URL',
        'webhooks[0].secret: must be whsec_ followed by the base64 of 24 to 64 random bytes',
        'webhooks[0].previousSecret: must be whsec_ followed by the base64 of 24 to 64 random bytes',
        'webhooks[0].types: each entry must be a type glob of [A-Za-z0-9_.-] and *',
        'webhooks[0].concurrency: must not be less than 1',
        'webhooks[0].retrySchedule: must be a list of delays in ms (integers ≥ 0)',
        'webhooks[0].retrySchedule: must start with 0 (the first attempt is immediate)',
        'webhooks[1].secret: environment variable MISSING_SECRET is not set',
        'webhooks[2].id: duplicate id "dup" (also webhooks[1])',
        'webhooks[2].retrySchedule: should not be empty',
        'webhooks[2].circuitBreaker.failures: must not be less than 1',
        'webhooks[3]: must be a mapping',
      ].sort(),
    );
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain(secret.slice(6));
  });
});
