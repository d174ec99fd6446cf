import { supportedProviders } from '../connectors/registry';
import 'reflect-metadata';
import { ZapThinkerOptions } from '../connectors/zapthinker/zapthinker.options';
import { configError, SECRET, zap } from './__fixtures__/config.fixture';
import { loadConfig } from './config.loader';

/** loadConfig: what a valid config becomes, how every problem is reported (never a secret), the cluster block. */
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
      producer: { batchSize: 500, maxBatchBytes: 900 * 1024, maxQueue: 100_000, maxQueueBytes: 128 * 1024 * 1024, warnQueue: 10_000, compression: 'gzip', cloudEventsMode: 'binary', lingerMs: 5, requestTimeoutMs: 30_000, retryMaxDelayMs: 10_000 },
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
      keepAliveTimeoutMs: 65_000,
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

describe('loadConfig: cluster', () => {
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
