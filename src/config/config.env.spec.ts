import 'reflect-metadata';
import { ZapThinkerOptions } from '../connectors/zapthinker/zapthinker.options';
import { configError, zap } from './__fixtures__/config.fixture';
import { loadConfig } from './config.loader';

/** loadConfig and the environment: ${VAR} interpolation and its conversions, KAFKA_BROKERS, PORT, LOG_LEVEL (docs/configuration.md). */
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
