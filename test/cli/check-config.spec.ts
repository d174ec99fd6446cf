import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/* `chatbridge check-config <file>`: the real bin, as an operator runs it (docs/configuration.md#checking-a-file). */

const BIN = join(__dirname, '..', '..', 'bin', 'chatbridge.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    // Only what a shell would pass: PATH, plus the variables the file interpolates.
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

describe('chatbridge check-config', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'chatbridge-check-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, yaml: string) => {
    const path = join(dir, name);
    writeFileSync(path, yaml);
    return path;
  };

  it('exits 0 with a summary for a valid file, reading the environment as the service does', async () => {
    const path = file('valid.yaml', [
      'channels:',
      '  - id: wa-sales',
      '    provider: zapthinker',
      '    zapthinker: { url: "https://api.zapthinker.com", instance: sales, apiKey: "${ZAP_KEY}" }',
    ].join('\n'));
    const r = await run(['check-config', path], { ZAP_KEY: 'k-123', CHATBRIDGE_API_TOKENS: 'a-token-of-16-chars-or-more', PORT: '9090' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${path}: valid; channels: wa-sales (zapthinker, socket); embedded mode (events on stdout); 1 API token(s); port 9090\n`);
  });

  it('lists every problem of an invalid file and exits 1', async () => {
    const path = file('invalid.yaml', [
      'colour: blue',
      'kafka: { brokers: [] }',
      'reconnect: { initialDelayMs: -5 }',
      'channels:',
      '  - id: Bad_ID',
      '    provider: nosuch',
      '  - id: zt',
      '    provider: zapthinker',
      '    zapthinker: { url: "https://api.zapthinker.com", instance: sales, apiKey: "${ZAP_KEY}" }',
    ].join('\n'));
    const r = await run(['check-config', path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const problems = r.stderr.split('\n').filter((l) => l.startsWith('  - '));
    expect(r.stderr).toContain(`${path}: invalid configuration (${problems.length} problems)`);
    for (const expected of ['colour: unknown key', 'kafka.brokers: should not be empty', 'reconnect.initialDelayMs: must not be less than 1',
      'channels[0].id: must match', 'channels[0].provider: must be one of', 'ZAP_KEY']) {
      expect(problems.some((p) => p.includes(expected))).toBe(true);
    }
  });

  it('says a missing file is missing and exits 1', async () => {
    const path = join(dir, 'absent.yaml');
    const r = await run(['check-config', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`file not found: ${path}`);
  });

  it('exits 2 with the usage for a wrong invocation', async () => {
    expect(await run([])).toMatchObject({ code: 2, stderr: expect.stringContaining('usage: chatbridge check-config <file>') });
    expect(await run(['check-config'])).toMatchObject({ code: 2, stderr: expect.stringContaining('usage: chatbridge check-config <file>') });
  });
});
