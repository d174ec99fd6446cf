import pino from 'pino';
import { DEFAULT_BACKOFF } from '../../src/common/backoff';
import { ConnectionSupervisor } from '../../src/connectors/supervisor';
import { SmartsuppOptions } from '../../src/connectors/smartsupp/smartsupp.options';
import { SmartsuppVisitor, type VisitorObserver } from '../../src/connectors/smartsupp/smartsupp.visitor';
import { SmartsuppSimulator } from '../simulators/smartsupp/smartsupp.simulator';

/**
 * Visitor sockets share their listeners (one set of functions for every visitor, each finding its visitor by the
 * socket): each socket's events still reach its own visitor, and the channel's fault boundary still holds.
 */
describe('Smartsupp visitor sockets: shared listeners', () => {
  const sim = new SmartsuppSimulator({ accountKeys: ['k'] });
  const supervisors: ConnectionSupervisor[] = [];

  beforeAll(() => sim.start());
  afterAll(async () => {
    await Promise.all(supervisors.map((s) => s.stop()));
    await sim.stop();
  });

  it("delivers each socket's events to its own visitor; a handler that throws is reported as a fault and the socket goes on", async () => {
    const seen: Array<[string | null, string, string]> = [];
    const faults: Array<[string, string]> = [];
    let failNext = false;
    const observer: VisitorObserver = {
      initialized: () => undefined,
      failed: () => undefined,
      lost: () => undefined,
      event: (visitor, event, data) => {
        if (failNext) {
          failNext = false;
          throw new Error('handler bug');
        }
        const text = String((data as { message?: { content?: { text?: string } } }).message?.content?.text);
        seen.push([visitor.id, event, text]);
      },
    };
    const options = Object.assign(new SmartsuppOptions(), { url: sim.url, key: 'k' });
    const policy = { backoff: DEFAULT_BACKOFF, authBackoff: DEFAULT_BACKOFF, stableAfterMs: 30_000 };
    const open = () => {
      const visitor = new SmartsuppVisitor({ options, observer, url: sim.url }, null);
      const supervisor = new ConnectionSupervisor(
        (hooks) => {
          visitor.hooks = hooks;
          return visitor;
        },
        policy,
        { status: () => undefined, frame: () => undefined, fault: (where, err) => void faults.push([where, (err as Error).message]) },
        pino({ level: 'silent' }),
      );
      supervisors.push(supervisor);
      supervisor.start();
      return visitor;
    };
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 250 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
    };
    const [a, b] = [open(), open()];
    await until(() => a.ready && b.ready);

    failNext = true;
    sim.agentSays(a.id as string, 'lost to the bug');
    sim.agentSays(a.id as string, 'to a');
    sim.agentSays(b.id as string, 'to b');
    await until(() => seen.length >= 2);

    expect(faults).toEqual([['onevent', 'handler bug']]);
    expect(seen).toEqual([
      [a.id, 'chat.message_received', 'to a'],
      [b.id, 'chat.message_received', 'to b'],
    ]);
    expect(a.ready && b.ready).toBe(true);
    expect(sim.liveSockets()).toBe(2);
    // The `ws` client, not Node's global WebSocket (Node 22 and later), which Engine.IO 3 would take on its own and
    // which costs about 3x the heap per visitor: its fetch-based handshake always sends `sec-fetch-mode`. Only a Node
    // with a global WebSocket can fail this (CI runs the tests on Node 24 too).
    expect(sim.connects.map((c) => c.headers['sec-fetch-mode'])).toEqual([undefined, undefined]);
  });
});
