import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configError, SECRET } from './__fixtures__/config.fixture';
import { loadConfig } from './config.loader';

/** loadConfig and the YAML file: CHATBRIDGE_CONFIG, ./chatbridge.yaml, and errors that point at a line without quoting the file. */
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

/** `s` as a literal pattern for a RegExp. */
function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
