import { supportedProviders } from '../connectors/registry';
import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZapThinkerOptions } from '../connectors/zapthinker/zapthinker.options';
import { ConfigError, loadConfig, type LoadConfigInput } from './config.loader';

/** A value that must never appear in an error message. */
const SECRET = 'S3CR3T-do-not-leak-91f2';

const zap = (extra: Record<string, unknown> = {}) => ({
  url: 'https://api.zapthinker.com',
  instance: 'sales',
  apiKey: '${ZAP_KEY}',
  ...extra,
});

/** Runs loadConfig expecting a ConfigError; returns it. */
function configError(input: LoadConfigInput): ConfigError {
  try {
    loadConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('loadConfig did not throw');
}

describe('loadConfig: a valid config', () => {
  it('loads kafka + one zapthinker channel with every default applied', () => {
    const { config, warnings } = loadConfig({
      env: { ZAP_KEY: 'zap-key-1' },
      raw: {
        kafka: { brokers: ['kafka-0.kafka:9092'] },
        channels: [{ id: 'wa-sales', provider: 'zapthinker', zapthinker: zap() }],
      },
    });

    expect(warnings).toEqual([]);
    expect(config.kafka).toEqual({
      brokers: ['kafka-0.kafka:9092'],
      clientId: 'chatbridge',
      ssl: false,
      createTopics: false,
      connectionTimeoutMs: 3000,
      topics: { events: 'chatbridge.events', commands: 'chatbridge.commands', deadLetter: 'chatbridge.dlq', state: 'chatbridge.channels', commandLedger: 'chatbridge.commands.ledger' },
      producer: { batchSize: 500, maxBatchBytes: 900 * 1024, maxQueue: 100_000, maxQueueBytes: 128 * 1024 * 1024, warnQueue: 10_000, compression: 'gzip', requestTimeoutMs: 30_000, retryMaxDelayMs: 10_000 },
      consumer: { maxWaitTimeMs: 500, sessionTimeoutMs: 30_000, commitIntervalMs: 1000, poisonMaxTries: 3, webhookMaxOpenOffsets: 10_000 },
    });
    expect(config.limits).toEqual({ maxFrameBytes: 1024 * 1024, maxJsonDepth: 64, maxEventBytes: 900 * 1024 });
    expect(config.reconnect).toEqual({
      initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2, authInitialDelayMs: 5_000, authMaxDelayMs: 300_000, stableAfterMs: 30_000,
      authGraceMs: 3_600_000, authGraceAttempts: 5, authGraceWindowMs: 60_000,
    });
    expect(config.dedupe).toEqual({ maxEntries: 100_000, ttlMs: 6 * 3600_000 });
    expect(config.shutdownGraceMs).toBe(20_000);
    expect(config.api).toEqual({
      maxBodyBytes: 256 * 1024, rateLimit: { perSecond: 50, burst: 100 },
      stream: { maxBufferedEvents: 1000, maxBufferedBytes: 4 * 1024 * 1024, maxPatterns: 50, maxPatternLength: 200, maxSubscribersPerToken: 100, maxSubscribers: 500 },
      authFailures: { maxFailures: 20, windowMs: 60_000, maxAddresses: 10_000 },
    });
    expect(config.commands).toEqual({
      deadlineMs: 120_000, echoTimeoutMs: 30_000, maxPendingPerChannel: 1000, ledgerMaxEntries: 100_000, ledgerTtlMs: 86_400_000, maxDepth: 32,
      retry: { initialDelayMs: 500, maxDelayMs: 10_000, multiplier: 2, maxAttempts: 6 },
    });
    expect(config.port).toBe(8080);
    expect(config.logLevel).toBe('info');
    expect(config.apiTokens).toEqual([]);
    expect(config.configPath).toBeUndefined();

    expect(config.channels).toHaveLength(1);
    const [channel] = config.channels;
    expect(channel).toMatchObject({ id: 'wa-sales', provider: 'zapthinker', mode: 'socket' });
    // The provider block is an instance of the provider's own options class, with its defaults.
    expect(channel.options).toBeInstanceOf(ZapThinkerOptions);
    expect(channel.options).toEqual({
      url: 'https://api.zapthinker.com', instance: 'sales', apiKey: 'zap-key-1', path: '/socket.io', connectTimeoutMs: 10_000, commandTimeoutMs: 15_000,
    });
  });

  it('keeps explicit values over defaults and parses CHATBRIDGE_API_TOKENS', () => {
    const { config } = loadConfig({
      env: { CHATBRIDGE_API_TOKENS: ' token-one-0123456789, ,token-two-0123456789 ' },
      raw: {
        kafka: { brokers: ['b:9092'], topics: { events: 'my.events' }, producer: { batchSize: 50 } },
        reconnect: { maxDelayMs: 5000 },
        channels: [{ id: 'wa-2', provider: 'zapthinker', mode: 'webhook', inbound: { token: 'inbound-token-0123456789' }, zapthinker: zap({ apiKey: 'k', connectTimeoutMs: 2500 }) }],
      },
    });
    expect(config.kafka?.topics).toEqual({ events: 'my.events', commands: 'chatbridge.commands', deadLetter: 'chatbridge.dlq', state: 'chatbridge.channels', commandLedger: 'chatbridge.commands.ledger' });
    expect(config.kafka?.producer.batchSize).toBe(50);
    expect(config.kafka?.producer.maxQueue).toBe(100_000);
    expect(config.reconnect.maxDelayMs).toBe(5000);
    expect(config.reconnect.initialDelayMs).toBe(500);
    expect(config.channels[0].mode).toBe('webhook');
    expect(config.channels[0].options).toMatchObject({ connectTimeoutMs: 2500, path: '/socket.io' });
    expect(config.apiTokens).toEqual(['token-one-0123456789', 'token-two-0123456789']);
  });

  it('has no kafka when neither the file nor KAFKA_BROKERS names brokers (embedded mode)', () => {
    expect(loadConfig({ env: {}, raw: {} }).config.kafka).toBeUndefined();
  });
});

describe('loadConfig: every problem at once', () => {
  it('lists every problem, each with its path, in one ConfigError', () => {
    const err = configError({
      env: { ZAP_KEY: 'k' },
      raw: {
        kafak: { brokers: ['typo:9092'] },
        kafka: { brokers: ['b:9092'], clientID: 'x', ssl: 'yes', producer: { batchSize: 'lots' } },
        channels: [
          { id: 'Bad_ID', provider: 'zapthinker', zapthinker: zap() },
          { id: 'wa-1', provider: 'zapthinker', zapthinker: { url: 'https://api.zapthinker.com', instance: 'sales' } },
          { id: 'tg', provider: 'telegram', telegram: {} },
          { id: 'wa-1', provider: 'zapthinker', zapthinker: zap() },
          { id: 'wa-4', provider: 'zapthinker' },
          { id: 'wa-5', provider: 'zapthinker', zapthinker: zap(), captivate: { url: 'wss://x.example' } },
          { id: 'wa-6', provider: 'zapthinker', zapthinker: zap({ apiKey: '${MISSING_KEY}' }) },
          { id: 'wa-7', provider: 'zapthinker', zapthinker: zap({ connectTimeoutMs: 5 }) },
          { id: 'wa-8', provider: 'zapthinker', mode: 'carrier-pigeon', zapthinker: zap({ url: 'not a url' }) },
          'just a string',
        ],
      },
    });
    expect([...err.problems].sort()).toEqual(
      [
        'kafak: unknown key',
        'kafka.clientID: unknown key',
        'kafka.ssl: must be a boolean value',
        'kafka.producer.batchSize: must be an integer number',
        'channels[0].id: must match [a-z0-9-]{1,64}',
        'channels[1].zapthinker.apiKey: required',
        `channels[2].provider: must be one of ${supportedProviders().join(', ')}`,
        'channels[3].id: duplicate id "wa-1" (also channels[1])',
        'channels[4].zapthinker: required (a mapping of zapthinker options)',
        "channels[5].captivate: unknown key (this channel's provider is zapthinker)",
        'channels[6].zapthinker.apiKey: environment variable MISSING_KEY is not set',
        'channels[7].zapthinker.connectTimeoutMs: must not be less than 100',
        'channels[8].mode: must be one of the following values: socket, webhook',
        'channels[8].zapthinker.url: must be a URL address',
        'channels[9]: must be a mapping',
      ].sort(),
    );
    // The message carries every problem too (it is what the operator sees on a failed start).
    expect(err.message).toContain(`(${err.problems.length} problems)`);
    for (const p of err.problems) expect(err.message).toContain(p);
  });

  it('reports a missing required nested field as "required", not as a list of type errors', () => {
    const err = configError({ env: {}, raw: { kafka: { clientId: 'x' } } });
    expect(err.problems).toEqual(['kafka.brokers: required']);
  });

  it('reports a wrong type once, without misleading range errors', () => {
    const err = configError({ env: {}, raw: { reconnect: { initialDelayMs: 'soon' }, kafka: 'localhost:9092' } });
    expect([...err.problems].sort()).toEqual(['kafka: must be a mapping', 'reconnect.initialDelayMs: must be an integer number']);
  });

  it('rejects a non-list channels and a non-mapping root', () => {
    expect(configError({ env: {}, raw: { channels: 'wa-sales' } }).problems).toEqual(['channels: must be a list']);
    expect(configError({ env: {}, raw: ['wa-sales'] }).problems).toEqual(['(root): must be a mapping']);
  });
});

describe('loadConfig: secrets never appear in errors', () => {
  it('leaves out values of invalid fields, interpolated env values and valid secrets', () => {
    const err = configError({
      env: { ZAP_KEY: SECRET, BAD_URL: `https://user:${SECRET}@` },
      raw: {
        kafka: { brokers: ['b:9092'], sasl: { mechanism: SECRET, username: 'bridge', password: [SECRET] } },
        reconnect: { initialDelayMs: SECRET },
        channels: [
          // A valid secret in a valid channel…
          { id: 'wa-sales', provider: 'zapthinker', zapthinker: zap() },
          // …and the same value in invalid fields, directly and through ${VAR}.
          { id: 'wa-2', provider: 'zapthinker', mode: SECRET, zapthinker: zap({ url: '${BAD_URL}', instance: `a/${SECRET}` }) },
        ],
      },
    });
    expect([...err.problems].sort()).toEqual(
      [
        'kafka.sasl.mechanism: must be one of the following values: plain, scram-sha-256, scram-sha-512',
        'kafka.sasl.password: must be a string',
        'reconnect.initialDelayMs: must be an integer number',
        'channels[1].mode: must be one of the following values: socket, webhook',
        'channels[1].zapthinker.url: must be a URL address',
        'channels[1].zapthinker.instance: must not contain "/" or spaces',
      ].sort(),
    );
    expect(err.message).not.toContain(SECRET);
    expect(err.problems.join('\n')).not.toContain(SECRET);
    expect(String(err.stack)).not.toContain(SECRET);
    expect(JSON.stringify(err)).not.toContain(SECRET);
  });
});

describe('loadConfig: ${VAR} interpolation', () => {
  it('replaces ${VAR} anywhere in strings, also several in one string and inside lists', () => {
    const { config } = loadConfig({
      env: { ZAP_KEY: 'key-from-env', HOST: 'zap.internal', ZPORT: '8443', B1: 'k1:9092', B2: 'k2:9092' },
      raw: {
        kafka: { brokers: ['${B1}', '${B2}'] },
        channels: [{ id: 'wa-sales', provider: 'zapthinker', zapthinker: zap({ url: 'https://${HOST}:${ZPORT}' }) }],
      },
    });
    expect(config.kafka?.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(config.channels[0].options).toMatchObject({ url: 'https://zap.internal:8443', apiKey: 'key-from-env' });
  });

  it('uses the ${VAR:-default} fallback when VAR is unset or empty, and VAR when set', () => {
    const raw = { kafka: { brokers: ['b:9092'], clientId: 'cb-${REGION:-eu}' } };
    expect(loadConfig({ env: {}, raw }).config.kafka?.clientId).toBe('cb-eu');
    expect(loadConfig({ env: { REGION: '' }, raw }).config.kafka?.clientId).toBe('cb-eu');
    expect(loadConfig({ env: { REGION: 'us' }, raw }).config.kafka?.clientId).toBe('cb-us');
    // An empty default is allowed and yields an empty string.
    expect(loadConfig({ env: {}, raw: { kafka: { brokers: ['b:9092'], clientId: 'cb${SUFFIX:-}' } } }).config.kafka?.clientId).toBe('cb');
  });

  it('reports every missing variable with its path, including list positions', () => {
    const err = configError({
      env: { B1: 'k1:9092' },
      raw: { kafka: { brokers: ['${B1}', '${B2}'], sasl: { mechanism: 'plain', username: 'u', password: '${KAFKA_PASSWORD}' } } },
    });
    expect([...err.problems].sort()).toEqual([
      'kafka.brokers[1]: environment variable B2 is not set',
      'kafka.sasl.password: environment variable KAFKA_PASSWORD is not set',
    ]);
  });

  it('converts interpolated numbers and booleans to their declared types', () => {
    const { config } = loadConfig({
      env: { BATCH: '250', CREATE: 'true', GRACE: '5000', TIMEOUT: '2500', ZAP_KEY: 'k' },
      raw: {
        kafka: { brokers: ['b:9092'], createTopics: '${CREATE}', producer: { batchSize: '${BATCH}' } },
        shutdownGraceMs: '${GRACE}',
        channels: [{ id: 'wa-sales', provider: 'zapthinker', zapthinker: zap({ connectTimeoutMs: '${TIMEOUT}' }) }],
      },
    });
    expect(config.kafka?.producer.batchSize).toBe(250);
    expect(config.kafka?.createTopics).toBe(true);
    expect(config.shutdownGraceMs).toBe(5000);
    expect((config.channels[0].options as ZapThinkerOptions).connectTimeoutMs).toBe(2500);
  });
});

describe('loadConfig: booleans in provider blocks', () => {
  it('reads "${VAR}"=false as false in every provider boolean option', () => {
    const { config } = loadConfig({
      env: { T: 'false' },
      raw: { channels: [{ id: 'hub', provider: 'captivate', captivate: { url: 'wss://c.example', apiKey: 'k', transcriptOnReconnect: '${T}' } }] },
    });
    expect((config.channels[0].options as { transcriptOnReconnect: boolean }).transcriptOnReconnect).toBe(false);
  });
});

describe('loadConfig: kafka.ssl from ${SSL}', () => {
  const raw = { kafka: { brokers: ['b:9092'], ssl: '${SSL}' } };

  it('reads SSL=false as boolean false (implicit conversion would make the string "false" true)', () => {
    const ssl = loadConfig({ env: { SSL: 'false' }, raw }).config.kafka?.ssl;
    expect(ssl).toBe(false);
  });

  it('reads SSL=true as boolean true, and a YAML boolean as is', () => {
    expect(loadConfig({ env: { SSL: 'true' }, raw }).config.kafka?.ssl).toBe(true);
    expect(loadConfig({ env: {}, raw: { kafka: { brokers: ['b:9092'], ssl: true } } }).config.kafka?.ssl).toBe(true);
  });

  it('rejects anything else', () => {
    expect(configError({ env: { SSL: 'yes' }, raw }).problems).toEqual(['kafka.ssl: must be a boolean value']);
  });
});

describe('loadConfig: KAFKA_BROKERS', () => {
  it('overrides the file brokers and keeps the rest of the kafka block', () => {
    const { config } = loadConfig({
      env: { KAFKA_BROKERS: ' a:9092, b:9092 ,' },
      raw: { kafka: { brokers: ['file:9092'], clientId: 'from-file' } },
    });
    expect(config.kafka?.brokers).toEqual(['a:9092', 'b:9092']);
    expect(config.kafka?.clientId).toBe('from-file');
  });

  it('creates the kafka block, with defaults, when the file has none', () => {
    const { config } = loadConfig({ env: { KAFKA_BROKERS: 'a:9092' }, raw: {} });
    expect(config.kafka).toMatchObject({ brokers: ['a:9092'], clientId: 'chatbridge', topics: { events: 'chatbridge.events' } });
  });

  it('supplies the brokers of a kafka block that has none', () => {
    const { config } = loadConfig({ env: { KAFKA_BROKERS: 'a:9092' }, raw: { kafka: { clientId: 'x' } } });
    expect(config.kafka?.brokers).toEqual(['a:9092']);
  });

  it('is ignored when empty', () => {
    expect(loadConfig({ env: { KAFKA_BROKERS: ' , ' }, raw: {} }).config.kafka).toBeUndefined();
  });
});

describe('loadConfig: PORT and LOG_LEVEL', () => {
  it('reads a valid PORT and defaults to 8080 when unset or empty', () => {
    expect(loadConfig({ env: { PORT: '9090' }, raw: {} }).config.port).toBe(9090);
    expect(loadConfig({ env: { PORT: '' }, raw: {} }).config.port).toBe(8080);
    expect(loadConfig({ env: {}, raw: {} }).config.port).toBe(8080);
  });

  it.each(['http', '70000', '-1', '80.5', ' ', '1e3', '0x1f90'])('rejects PORT=%j', (port) => {
    expect(configError({ env: { PORT: port }, raw: {} }).problems).toEqual(['PORT: must be an integer 0..65535']);
  });

  it('accepts every documented LOG_LEVEL and rejects others', () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace']) {
      expect(loadConfig({ env: { LOG_LEVEL: level }, raw: {} }).config.logLevel).toBe(level);
    }
    const err = configError({ env: { LOG_LEVEL: 'verbose' }, raw: {} });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace/);
  });

  it('reports env problems together with file problems', () => {
    const err = configError({ env: { PORT: 'x', LOG_LEVEL: 'loud' }, raw: { kafak: {} } });
    expect(err.problems).toHaveLength(3);
  });
});

describe('loadConfig: the YAML file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chatbridge-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads CHATBRIDGE_CONFIG, interpolates it and records the path', () => {
    const file = join(dir, 'chatbridge.yaml');
    writeFileSync(
      file,
      [
        'kafka:',
        '  brokers: [kafka-0.kafka:9092]',
        '  ssl: ${SSL:-false}',
        'channels:',
        '  - id: wa-sales',
        '    provider: zapthinker',
        // `${VAR}` inside a flow mapping must be quoted: `{` and `}` are flow indicators in YAML.
        '    zapthinker: { url: https://api.zapthinker.com, instance: sales, apiKey: "${ZAP_KEY}" }',
        '',
      ].join('\n'),
    );
    const { config, warnings } = loadConfig({ env: { CHATBRIDGE_CONFIG: file, ZAP_KEY: 'from-env' } });
    expect(warnings).toEqual([]);
    expect(config.configPath).toBe(file);
    expect(config.kafka?.brokers).toEqual(['kafka-0.kafka:9092']);
    expect(config.kafka?.ssl).toBe(false);
    expect(config.channels.map((c) => c.id)).toEqual(['wa-sales']);
    expect(config.channels[0].options).toMatchObject({ apiKey: 'from-env', instance: 'sales' });
  });

  it('treats an empty file as an empty config', () => {
    const file = join(dir, 'empty.yaml');
    writeFileSync(file, '');
    expect(loadConfig({ env: { CHATBRIDGE_CONFIG: file } }).config.channels).toEqual([]);
  });

  it('reports a YAML syntax error with line and column but none of the file content', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, ['kafka:', '  brokers: [a:9092]', 'channels:', `  - id: wa-sales`, `    zapthinker: { apiKey: "${SECRET}, url: [ }`, ''].join('\n'));
    const err = configError({ env: { CHATBRIDGE_CONFIG: file } });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(new RegExp(`^${escapeRegExp(file)}: YAML [A-Z_]+ at line \\d+, column \\d+$`));
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain('zapthinker');
  });

  it('reports the position of an indentation error', () => {
    const file = join(dir, 'indent.yaml');
    writeFileSync(file, ['kafka:', '  brokers: [a:9092]', ` clientId: ${SECRET}`, ''].join('\n'));
    const err = configError({ env: { CHATBRIDGE_CONFIG: file } });
    expect(err.problems).toEqual([`${file}: YAML BAD_INDENT at line 3, column 1`]);
    expect(err.message).not.toContain(SECRET);
  });

  it('fails when an explicit CHATBRIDGE_CONFIG does not exist', () => {
    const file = join(dir, 'missing.yaml');
    const err = configError({ env: { CHATBRIDGE_CONFIG: file } });
    expect(err.problems).toEqual([`CHATBRIDGE_CONFIG: file not found: ${file}`]);
  });

  it('fails, without crashing, when the path is not a readable file', () => {
    expect(configError({ env: { CHATBRIDGE_CONFIG: dir } }).problems).toEqual([`${dir}: cannot read (EISDIR)`]);
  });

  it('warns and starts with zero channels when the default ./chatbridge.yaml is absent', () => {
    const cwd = process.cwd();
    process.chdir(dir); // an empty directory: no ./chatbridge.yaml here
    try {
      const { config, warnings } = loadConfig({ env: {} });
      expect(config.channels).toEqual([]);
      expect(config.kafka).toBeUndefined();
      expect(config.configPath).toBeUndefined();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('./chatbridge.yaml');
    } finally {
      process.chdir(cwd);
    }
  });

  it('reads ./chatbridge.yaml by default when it exists', () => {
    writeFileSync(join(dir, 'chatbridge.yaml'), 'kafka: { brokers: [default:9092] }\n');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const { config, warnings } = loadConfig({ env: {} });
      expect(warnings).toEqual([]);
      expect(config.kafka?.brokers).toEqual(['default:9092']);
      expect(config.configPath).toBe('./chatbridge.yaml');
    } finally {
      process.chdir(cwd);
    }
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

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

  it('cluster: off by default; on, it needs Kafka, a heartbeat at most a third of the session, and a hold below the grace', () => {
    const { config } = loadConfig({ env: {}, raw: {} });
    expect(config.cluster).toMatchObject({ enabled: false, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000, rebalanceTimeoutMs: 30_000, handoverOverlapMs: 5000 });
    const on = loadConfig({ env: { ON: 'true' }, raw: { kafka: { brokers: ['k:9092'] }, cluster: { enabled: '${ON}' } } }).config;
    expect(on.cluster.enabled).toBe(true);
    expect(configError({ env: {}, raw: { cluster: { enabled: true } } }).problems)
      .toEqual(['cluster.enabled: requires kafka (the replicas share the channels through a Kafka consumer group)']);
    expect([...configError({ env: {}, raw: { kafka: { brokers: ['k:9092'] }, shutdownGraceMs: 4000, cluster: { enabled: true, sessionTimeoutMs: 6000, heartbeatIntervalMs: 2500, handoverOverlapMs: 4000, colour: 1 } } }).problems].sort())
      .toEqual([
        'cluster.colour: unknown key',
        'cluster.handoverOverlapMs: must be below shutdownGraceMs (on SIGTERM the sinks need time to flush after the sockets close)',
        'cluster.heartbeatIntervalMs: must be at most a third of cluster.sessionTimeoutMs',
      ]);
  });
});
