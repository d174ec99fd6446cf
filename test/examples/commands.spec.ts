import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';
import { startTestBridge, TEST_TOKEN, type TestBridge } from '../helpers/bridge-harness';
import { startZapThinker } from './zapthinker-channel';

const SCRIPT = join(__dirname, '..', '..', 'examples', 'commands', 'commands.sh');

/** examples/commands/commands.sh (bash and curl) against a bridge with a ZapThinker channel. */
describe('example: the curl walkthrough of commands (e2e)', () => {
  let sim: ZapThinkerSimulator | undefined;
  let bridge: TestBridge | undefined;

  afterEach(async () => {
    await bridge?.close();
    await sim?.stop();
    bridge = sim = undefined;
  });

  it('sends once, answers the repeat as a duplicate, ends sent, and shows the documented 400 and 422', async () => {
    const started = await startZapThinker();
    sim = started.sim;
    bridge = await startTestBridge({ channels: [started.channel] });
    await sim.waitForClients('sales', 1);

    const env = { PATH: process.env.PATH, CHATBRIDGE_URL: bridge.url, CHATBRIDGE_TOKEN: TEST_TOKEN, CHANNEL: 'wa-sales', CONVERSATION: '5511999999999', COMMAND_ID: 'walkthrough-1' };
    const { stdout } = await promisify(execFile)('bash', [SCRIPT], { env, timeout: 30_000 });
    const answer = (label: string) => {
      const line = stdout.split('\n').find((l) => l.startsWith(`${label}: `))!;
      const rest = line.slice(label.length + 2);
      return label === 'final' ? { status: 200, body: JSON.parse(rest) } : { status: Number(rest.slice(0, 3)), body: JSON.parse(rest.slice(4)) };
    };

    expect(answer('send')).toEqual({ status: 202, body: { commandId: 'walkthrough-1', channelId: 'wa-sales', status: 'accepted', duplicate: false } });
    expect(answer('repeat')).toMatchObject({ status: 202, body: { commandId: 'walkthrough-1', channelId: 'wa-sales', duplicate: true } });
    expect(answer('final').body).toMatchObject({ commandId: 'walkthrough-1', type: 'message.send', status: 'sent', attempts: 1, conversationId: expect.stringMatching(/^5511999999999/) });
    const invalid = answer('invalid');
    expect(invalid).toMatchObject({ status: 400, body: { statusCode: 400, error: 'Bad Request' } });
    expect(invalid.body.details).toEqual(expect.arrayContaining([expect.stringContaining('type'), expect.stringContaining('conversationId'), 'colour: unknown key']));
    expect(answer('unsupported')).toMatchObject({ status: 422, body: { statusCode: 422, message: expect.stringContaining('does not support command type "typing"') } });
    // The repeat sent nothing: one sendText reached the upstream.
    expect(sim.requests.filter((r) => r.path === '/message/sendText/sales')).toHaveLength(1);
  });
});
