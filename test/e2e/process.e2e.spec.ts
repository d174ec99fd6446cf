import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';

const ROOT = join(__dirname, '..', '..');
const TS_NODE = require.resolve('ts-node/dist/bin');

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs a TypeScript entry point as its own process, the way `npm start` / `npm run demo` do. */
function run(script: string, env: NodeJS.ProcessEnv, opts: { killAfter?: (out: { stdout: string }) => boolean; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TS_NODE, '--transpile-only', script], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
    const res: Run = { code: null, signal: null, stdout: '', stderr: '' };
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out; stdout: ${res.stdout.slice(-500)} stderr: ${res.stderr.slice(-500)}`));
    }, opts.timeoutMs ?? 40_000);
    child.stdout.on('data', (d: Buffer) => {
      res.stdout += d.toString();
      if (!signalled && opts.killAfter?.(res)) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => (res.stderr += d.toString()));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ ...res, code, signal });
    });
  });
}

describe('the chatbridge process (e2e)', () => {
  it('refuses to start on a broken config, listing every problem with its path and no secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatbridge-cfg-'));
    const file = join(dir, 'chatbridge.yaml');
    writeFileSync(file, [
      'kafka: { brokers: [], colour: blue }',
      'channels:',
      '  - { id: Bad_Id, provider: zapthinker, zapthinker: { url: not-a-url, instance: sales, apiKey: 12345-top-secret-value } }',
      '  - { id: two, provider: whatsapp }',
      '  - { id: three, provider: zapthinker, zapthinker: { url: "http://x", instance: i, apiKey: "${MISSING_KEY}" } }',
    ].join('\n'));
    const res = await run('src/main.ts', { CHATBRIDGE_CONFIG: file, PORT: '0' });
    expect(res.code).toBe(1);
    const expected = [
      'kafka.brokers: ',
      'kafka.colour: unknown key',
      'channels[0].id: must match [a-z0-9-]{1,64}',
      'channels[0].zapthinker.url: ',
      'channels[1].provider: must be one of zapthinker',  // the list continues with the other providers
      'channels[2].zapthinker.apiKey: environment variable MISSING_KEY is not set',
    ];
    for (const e of expected) expect(res.stderr).toContain(e);
    expect(res.stderr).not.toContain('12345-top-secret-value');
  });

  it('starts in embedded mode, streams events on stdout, and exits 0 on SIGTERM', async () => {
    const sim = new ZapThinkerSimulator({ instances: { sales: { token: 'proc-key' } } });
    await sim.start();
    sim.touch('sales');
    const dir = mkdtempSync(join(tmpdir(), 'chatbridge-cfg-'));
    const file = join(dir, 'chatbridge.yaml');
    writeFileSync(file, `channels:\n  - { id: wa, provider: zapthinker, zapthinker: { url: "${sim.url}", instance: sales, apiKey: "\${ZAP_KEY}" } }\ndeadLetter: { file: "${join(dir, 'dl.jsonl')}" }\n`);
    const sent = sim.waitForClients('sales', 1, 20_000).then(() => sim.sendMessage('sales', { remoteJid: '5511977776666', text: 'from a real process' }));
    const res = await run('src/main.ts', { CHATBRIDGE_CONFIG: file, PORT: '0', ZAP_KEY: 'proc-key', LOG_LEVEL: 'info' }, {
      killAfter: ({ stdout }) => stdout.includes('from a real process'),
    });
    await sent;
    await sim.stop();
    expect(res.code).toBe(0);
    // stdout carries only events (one CloudEvent per line); logs went to stderr.
    const events = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: { message?: { text?: string } } });
    expect(events.map((e) => e.type)).toContain('chatbridge.message.received');
    expect(events.find((e) => e.type === 'chatbridge.message.received')?.data.message?.text).toBe('from a real process');
    expect(res.stderr).toContain('"msg":"shutting down"');
    expect(res.stderr).toContain('"msg":"stopped"');
    expect(res.stderr).not.toContain('proc-key');
  });

  it('`npm run demo` shows events flowing on all five upstreams to a local webhook receiver that verifies each one, and ends by itself', async () => {
    const res = await run('scripts/demo.ts', { PORT: '0' }, { timeoutMs: 60_000 });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('chatbridge.message.received');
    expect(res.stdout).toContain('reconnecting → connected');
    expect(res.stdout).toMatch(/\d+ events printed, 1 replayed duplicate\(s\) suppressed/);

    // The receiver prints `✓ <id8> <time> <type> <channel> <subject> <what>` per verified delivery (no colours: stdout is not a TTY).
    const lines = res.stdout.split('\n');
    const eventLines = (type: string, channel: string, text?: string) =>
      lines.filter((l) => new RegExp(`^✓ [0-9a-f]{8} [0-9:.]{12} ${type.replace(/\./g, '\\.')}\\s+${channel}\\s`).test(l) && (text === undefined || l.includes(JSON.stringify(text))));
    const channels = ['wa-sales', 'jwt-support', 'captivate-hub', 'smartsupp-web', 'watchers-bot'];
    for (const id of channels) {
      expect({ id, connected: eventLines('chatbridge.channel.status', id).some((l) => l.includes('connecting → connected')) }).toEqual({ id, connected: true });
      const messages = lines.filter((l) => new RegExp(`^✓ [0-9a-f]{8} [0-9:.]{12} chatbridge\\.message\\.(received|sent)\\s+${id}\\s`).test(l));
      expect({ id, messages: messages.length > 0 }).toEqual({ id, messages: true });
    }
    expect(eventLines('chatbridge.message.received', 'wa-sales', 'Olá! Is the blue jacket in stock?')).toHaveLength(1);
    expect(eventLines('chatbridge.message.received', 'jwt-support', 'Hello there! Any news on my ticket?')).toHaveLength(1);
    expect(eventLines('chatbridge.notification', 'jwt-support')).toHaveLength(1);
    expect(eventLines('chatbridge.entity.status', 'jwt-support')).toHaveLength(1);
    expect(eventLines('chatbridge.conversation.started', 'captivate-hub')).toHaveLength(1);
    expect(eventLines('chatbridge.message.sent', 'captivate-hub', 'You said: Can I change my delivery address?')).toHaveLength(1);
    // Published once although Smartsupp echoes it.
    expect(eventLines('chatbridge.message.received', 'smartsupp-web', 'My order is late')).toHaveLength(1);
    expect(eventLines('chatbridge.message.sent', 'smartsupp-web', 'Hi Jana, let me check that for you.')).toHaveLength(1);
    expect(res.stdout).toMatch(/1 upstream echo\(es\) suppressed \(smartsupp-web\)/);
    expect(eventLines('chatbridge.message.received', 'watchers-bot', 'Who scores first tonight?')).toHaveLength(1);
    expect(eventLines('chatbridge.message.sent', 'watchers-bot', 'Place your prediction before kick-off!')).toHaveLength(1);
    // Every delivery verified with standardwebhooks, none failed, and every provider's events among them.
    expect(lines.filter((l) => l.startsWith('✗'))).toEqual([]);
    const [, delivered, verified] = /^webhook receiver: (\d+) deliveries, (\d+) verified ✓, 0 failed verification ✗$/m.exec(res.stdout) ?? [];
    expect(Number(verified)).toBeGreaterThan(20);
    expect(verified).toBe(delivered);
    const perProvider = Object.fromEntries((/^verified per provider: (.*)$/m.exec(res.stdout)?.[1] ?? '').split(', ').map((p) => [p.split(' ')[0], Number(p.split(' ')[1])]));
    for (const provider of ['zapthinker', 'jwt-websocket', 'captivate', 'smartsupp', 'watchers']) expect({ provider, verified: perProvider[provider] > 0 }).toEqual({ provider, verified: true });
    // GET /v1/channels, printed as a table at the end: every channel connected before shutdown.
    const table = res.stdout.slice(res.stdout.indexOf('GET /v1/channels'));
    for (const id of channels) expect(table).toMatch(new RegExp(`^  ${id}\\s+\\S+\\s+connected\\s`, 'm'));
  });
});
