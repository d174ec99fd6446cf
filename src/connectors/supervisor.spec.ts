import pino from 'pino';
import { backoffCeiling } from '../common/backoff';
import { ConnectorError } from '../common/errors';
import type { ChannelConfig } from '../config/config.loader';
import type { Connector, ConnectorContext, ProviderDefinition, UpstreamFrame } from './connector.interface';
import { ConnectionSupervisor, type StatusChange, type SupervisorPolicy } from './supervisor';

const policy: SupervisorPolicy = {
  backoff: { initialDelayMs: 1000, maxDelayMs: 8000, multiplier: 2 },
  authBackoff: { initialDelayMs: 30_000, maxDelayMs: 300_000, multiplier: 2 },
  stableAfterMs: 10_000,
};
const channel: ChannelConfig = { id: 'wa-sales', provider: 'zapthinker', mode: 'socket', options: {} };
const silent = pino({ level: 'silent' });

const networkError = () => new ConnectorError('network', 'cannot connect: ECONNREFUSED', { retriable: true });
const authError = () => new ConnectorError('auth_rejected', 'API key rejected', { retriable: true, authFailure: true });
const lostError = () => new ConnectorError('disconnected', 'socket disconnected: transport close', { retriable: true });

/** A promise the test settles by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Outcome = 'ok' | Error | Promise<void>;

/**
 * An in-memory Connector. `connect()` and `subscribe()` take the next scripted outcome (default: succeed);
 * `lose()` plays the upstream dropping the live connection. Every call is recorded in `calls`.
 */
class FakeConnector implements Connector {
  readonly calls: string[] = [];
  readonly connectPlan: Outcome[] = [];
  readonly subscribePlan: Outcome[] = [];

  constructor(readonly ctx: ConnectorContext<object>) {}

  connect(): Promise<void> {
    this.calls.push('connect');
    return settle(this.connectPlan.shift());
  }
  subscribe(): Promise<void> {
    this.calls.push('subscribe');
    return settle(this.subscribePlan.shift());
  }
  async close(): Promise<void> {
    this.calls.push('close');
  }
  lose(err: ConnectorError = lostError()): void {
    this.ctx.hooks.lost(err);
  }
  emit(frame: UpstreamFrame): void {
    this.ctx.hooks.frame(frame);
  }
  count(call: string): number {
    return this.calls.filter((c) => c === call).length;
  }
}

function settle(outcome: Outcome | undefined): Promise<void> {
  if (outcome === undefined || outcome === 'ok') return Promise.resolve();
  if (outcome instanceof Error) return Promise.reject(outcome);
  return outcome;
}

function setup(random: () => number = () => 0.5, supervised: SupervisorPolicy = policy) {
  const created: FakeConnector[] = [];
  const definition: ProviderDefinition = {
    name: 'zapthinker',
    optionsClass: class {},
    createConnector: (ctx) => {
      const c = new FakeConnector(ctx);
      created.push(c);
      return c;
    },
    map: () => [],
    supportsWebhookMode: false,
    commands: {},
  };
  const statuses: StatusChange[] = [];
  const frames: Array<{ frame: UpstreamFrame; receivedAt: Date }> = [];
  const faults: Array<{ where: string; err: unknown }> = [];
  const subscriptions: Array<{ subscription: string; code: string; retryInMs?: number }> = [];
  const supervisor = new ConnectionSupervisor((hooks) => definition.createConnector({ channelId: channel.id, options: channel.options, hooks, logger: silent, mode: () => 'socket', store: { get: () => undefined, set: () => undefined }, policy: supervised }), supervised, {
    status: (s) => statuses.push(s),
    frame: (frame, receivedAt) => frames.push({ frame, receivedAt }),
    fault: (where, err) => faults.push({ where, err }),
    subscriptionFailed: (subscription, err, retryInMs) => subscriptions.push({ subscription, code: err.code, retryInMs }),
  }, silent, random);
  expect(created).toHaveLength(1);
  return { supervisor, connector: created[0], statuses, frames, faults, subscriptions, states: () => statuses.map((s) => s.state) };
}

/** Lets pending promise callbacks run and advances the fake clock by `ms`. */
const tick = (ms = 0) => jest.advanceTimersByTimeAsync(ms);

beforeEach(() => {
  jest.useFakeTimers({ now: new Date('2024-06-05T13:20:00Z') });
});
afterEach(() => {
  jest.useRealTimers();
});

describe('ConnectionSupervisor: first connect', () => {
  it('reports connecting then connected, and subscribes once after connecting', async () => {
    const { supervisor, connector, statuses } = setup();
    supervisor.start();
    expect(statuses).toEqual([{ state: 'connecting', previous: 'disconnected', attempt: 0 }]);
    await tick();
    expect(statuses).toEqual([
      { state: 'connecting', previous: 'disconnected', attempt: 0 },
      { state: 'connected', previous: 'connecting', attempt: 0 },
    ]);
    expect(connector.calls).toEqual(['connect', 'subscribe']);
    expect(supervisor.current).toBe('connected');
  });

  it('ignores a second start()', async () => {
    const { supervisor, connector } = setup();
    supervisor.start();
    supervisor.start();
    await tick();
    expect(connector.count('connect')).toBe(1);
  });

  it('forwards frames with the time they were received', async () => {
    const { supervisor, connector, frames } = setup();
    supervisor.start();
    await tick();
    connector.emit({ event: 'messages.upsert', payload: { data: 1 } });
    expect(frames).toEqual([{ frame: { event: 'messages.upsert', payload: { data: 1 } }, receivedAt: new Date('2024-06-05T13:20:00Z') }]);
  });
});

describe('ConnectionSupervisor: failing connects', () => {
  const timeoutError = () => new ConnectorError('connect_timeout', 'connection attempt timed out', { retriable: true });

  it('reports reconnecting with attempts 1, 2, 3 and backs off by the policy before succeeding', async () => {
    const { supervisor, connector, statuses, states } = setup();
    // Alternating reasons: each failure is a change, so each is reported (an unchanged one is not, see below).
    connector.connectPlan.push(networkError(), timeoutError(), networkError(), 'ok');
    supervisor.start();
    await tick();
    // random = 0.5 → half of each ceiling: 1000, 2000, 4000.
    expect(statuses[1]).toEqual({ state: 'reconnecting', previous: 'connecting', attempt: 1, reason: 'network', nextRetryInMs: 500 });

    await tick(499);
    expect(connector.count('connect')).toBe(1);
    await tick(1);
    expect(connector.count('connect')).toBe(2);
    expect(statuses[2]).toEqual({ state: 'reconnecting', previous: 'reconnecting', attempt: 2, reason: 'connect_timeout', nextRetryInMs: 1000 });

    await tick(1000);
    expect(connector.count('connect')).toBe(3);
    expect(statuses[3]).toEqual({ state: 'reconnecting', previous: 'reconnecting', attempt: 3, reason: 'network', nextRetryInMs: 2000 });

    await tick(1999);
    expect(connector.count('connect')).toBe(3);
    expect(connector.count('subscribe')).toBe(0);
    await tick(1);
    expect(states()).toEqual(['connecting', 'reconnecting', 'reconnecting', 'reconnecting', 'connected']);
    expect(connector.calls).toEqual(['connect', 'connect', 'connect', 'connect', 'subscribe']);
    expect(supervisor.reconnects).toBe(3);
  });

  it('does not repeat an unchanged status, but keeps backing off and counting', async () => {
    const { supervisor, connector, statuses, states } = setup();
    connector.connectPlan.push(networkError(), networkError(), networkError(), 'ok');
    supervisor.start();
    await tick();
    await tick(500); // 2nd attempt
    await tick(1000); // 3rd attempt
    expect(connector.count('connect')).toBe(3);
    expect(states()).toEqual(['connecting', 'reconnecting']);
    expect(supervisor.reconnects).toBe(3);
    expect(supervisor.lastError).toBe('cannot connect: ECONNREFUSED');
    // The third failure is attempt 3: its delay is half of the 4000 ceiling.
    await tick(1999);
    expect(connector.count('connect')).toBe(3);
    await tick(1);
    expect(states()).toEqual(['connecting', 'reconnecting', 'connected']);
    expect(statuses.at(-1)).toEqual({ state: 'connected', previous: 'reconnecting', attempt: 3 });
  });

  it('keeps every delay within the ceiling of its attempt, up to the cap', async () => {
    for (const random of [() => 0, () => 1 - Number.EPSILON, Math.random]) {
      const { supervisor, connector, statuses } = setup(random);
      connector.connectPlan.push(...Array.from({ length: 8 }, (_v, i) => (i % 2 ? timeoutError() : networkError())));
      supervisor.start();
      await tick();
      for (let i = 0; i < 8; i++) await tick(policy.backoff.maxDelayMs);
      const retries = statuses.filter((s) => s.state === 'reconnecting');
      expect(retries.map((s) => s.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      retries.forEach((s, i) => {
        expect(s.nextRetryInMs).toBeGreaterThanOrEqual(0);
        expect(s.nextRetryInMs).toBeLessThanOrEqual(backoffCeiling(policy.backoff, i));
        expect(s.nextRetryInMs).toBeLessThanOrEqual(policy.backoff.maxDelayMs);
      });
      await supervisor.stop();
    }
  });

  it('waits maxDelayMs after an error that is not retriable', async () => {
    const { supervisor, connector, statuses } = setup();
    connector.connectPlan.push(new ConnectorError('bad_config', 'no such instance', { retriable: false }));
    supervisor.start();
    await tick();
    expect(statuses[1]).toMatchObject({ state: 'reconnecting', reason: 'bad_config', nextRetryInMs: 8000 });
  });

  it('treats a plain Error from connect() as a retriable failure', async () => {
    const { supervisor, connector, statuses } = setup();
    connector.connectPlan.push(new TypeError('boom'));
    supervisor.start();
    await tick();
    expect(statuses[1]).toMatchObject({ state: 'reconnecting', reason: 'unexpected', nextRetryInMs: 500 });
    expect(supervisor.lastError).toBe('boom');
  });
});

describe('ConnectionSupervisor: lost connections', () => {
  it('resubscribes after every reconnect', async () => {
    const { supervisor, connector, states } = setup();
    supervisor.start();
    await tick();
    connector.lose();
    await tick(500);
    connector.lose();
    await tick(policy.backoff.maxDelayMs);
    expect(connector.calls).toEqual(['connect', 'subscribe', 'connect', 'subscribe', 'connect', 'subscribe']);
    expect(states()).toEqual(['connecting', 'connected', 'reconnecting', 'connected', 'reconnecting', 'connected']);
  });

  it('resets the attempt counter after a connection that stayed up for stableAfterMs', async () => {
    const { supervisor, connector, statuses } = setup();
    connector.connectPlan.push(networkError(), networkError(), 'ok');
    supervisor.start();
    await tick(500 + 1000); // two failed attempts, then connected
    expect(supervisor.current).toBe('connected');

    await tick(policy.stableAfterMs);
    connector.lose();
    expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', reason: 'disconnected', attempt: 1, nextRetryInMs: 500 });
  });

  it('keeps backing off when the connection flaps (lost before stableAfterMs)', async () => {
    const { supervisor, connector, statuses } = setup();
    connector.connectPlan.push(networkError(), networkError(), 'ok', 'ok');
    supervisor.start();
    await tick(500 + 1000);
    expect(supervisor.current).toBe('connected');

    await tick(100);
    connector.lose();
    // Third failure in a row: ceiling 4000, half of it.
    expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 3, nextRetryInMs: 2000 });

    await tick(2000);
    expect(supervisor.current).toBe('connected');
    await tick(policy.stableAfterMs - 1);
    connector.lose();
    expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 4, nextRetryInMs: 4000 });
  });

  it('reconnects at once, without counting a failure, when the connector plans the reconnect', async () => {
    const { supervisor, connector, statuses } = setup();
    connector.connectPlan.push(networkError(), networkError(), 'ok', 'ok');
    supervisor.start();
    await tick(500 + 1000);
    expect(supervisor.current).toBe('connected');
    await tick(100); // short-lived, which would count as flapping for an unplanned loss
    connector.lose(new ConnectorError('token_refresh', 'token expires soon', { retriable: true, planned: true }));
    expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', reason: 'token_refresh', attempt: 0, nextRetryInMs: 0 });
    await tick(0);
    expect(supervisor.current).toBe('connected');
    expect(connector.count('connect')).toBe(4);
    expect(connector.count('subscribe')).toBe(2);
  });

  it('reacts once to a duplicate lost notification', async () => {
    const { supervisor, connector, states } = setup();
    supervisor.start();
    await tick();
    connector.lose();
    connector.lose();
    await tick(policy.backoff.maxDelayMs);
    expect(states()).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    expect(connector.count('connect')).toBe(2);
  });
});

describe('ConnectionSupervisor: auth failures', () => {
  it('backs off auth failures far slower than network failures', async () => {
    const net = setup();
    net.connector.connectPlan.push(networkError());
    net.supervisor.start();
    const auth = setup();
    auth.connector.connectPlan.push(authError());
    auth.supervisor.start();
    await tick();
    expect(net.statuses[1]).toMatchObject({ state: 'reconnecting', nextRetryInMs: 500 });
    expect(auth.statuses[1]).toMatchObject({ state: 'auth_failed', nextRetryInMs: 15_000 });
    await tick(1000);
    expect(net.connector.count('connect')).toBe(2);
    expect(auth.connector.count('connect')).toBe(1);
  });

  it('reports auth_failed and retries on the slower auth schedule', async () => {
    const { supervisor, connector, statuses } = setup();
    connector.connectPlan.push(authError(), authError(), 'ok');
    supervisor.start();
    await tick();
    expect(statuses[1]).toEqual({ state: 'auth_failed', previous: 'connecting', attempt: 1, reason: 'auth_rejected', nextRetryInMs: 15_000 });

    await tick(14_999);
    expect(connector.count('connect')).toBe(1);
    await tick(1);
    expect(connector.count('connect')).toBe(2);
    // Second rejection, same state and reason: not reported again; next delay half of the 60 s ceiling.
    expect(statuses).toHaveLength(2);
    await tick(29_999);
    expect(connector.count('connect')).toBe(2);
    await tick(1);
    expect(supervisor.current).toBe('connected');
    expect(connector.count('subscribe')).toBe(1);
    expect(statuses.map((s) => s.state)).toEqual(['connecting', 'auth_failed', 'connected']);
  });
});

describe('ConnectionSupervisor: refusals of a credential that connected recently', () => {
  const grace = { withinMs: 3_600_000, attempts: 5, windowMs: 60_000 };
  const graced: SupervisorPolicy = { ...policy, authBackoff: { initialDelayMs: 5000, maxDelayMs: 300_000, multiplier: 2 }, authGrace: grace };

  /** Connected, then lost: the credential was accepted just now. */
  async function connectedThenLost(p: SupervisorPolicy = graced) {
    const s = setup(() => 0.5, p);
    s.supervisor.start();
    await tick();
    expect(s.supervisor.current).toBe('connected');
    s.connector.lose();
    return s;
  }

  it('a credential that never connected is auth_failed at its first refusal, on the slow schedule (≤ 5 s first)', async () => {
    const { supervisor, connector, statuses } = setup(() => 0.5, graced);
    connector.connectPlan.push(authError(), authError());
    supervisor.start();
    await tick();
    expect(statuses[1]).toEqual({ state: 'auth_failed', previous: 'connecting', attempt: 1, reason: 'auth_rejected', nextRetryInMs: 2500 });
    await tick(2500);
    expect(connector.count('connect')).toBe(2);
    // Second slow retry: half of the 10 s ceiling.
    await tick(4999);
    expect(connector.count('connect')).toBe(2);
    await tick(1);
    expect(connector.count('connect')).toBe(3);
  });

  it('without a grace policy, a refusal after a connection is auth_failed at once (as before)', async () => {
    const { supervisor, connector, statuses } = await connectedThenLost({ ...graced, authGrace: undefined });
    connector.connectPlan.push(authError());
    await tick(500);
    expect(statuses.at(-1)).toMatchObject({ state: 'auth_failed', reason: 'auth_rejected', nextRetryInMs: 2500 });
    expect(supervisor.current).toBe('auth_failed');
  });

  it('the first 5 refusals in a row are retried on the normal schedule (reconnecting), the 6th is auth_failed', async () => {
    const { supervisor, connector, statuses } = await connectedThenLost();
    connector.connectPlan.push(...Array.from({ length: 6 }, authError), 'ok');
    await tick(); // lost → retry in 500 (attempt 0: the connection was not stable)
    // Normal schedule during the grace: half of 1000 · 2^n, capped at 8000.
    for (const delay of [500, 1000, 2000, 4000, 4000]) {
      await tick(delay);
      expect(supervisor.current).toBe('reconnecting');
    }
    expect(connector.count('connect')).toBe(6);
    expect(statuses.slice(2).map((s) => `${s.state}:${s.reason}`)).toEqual(['reconnecting:disconnected', 'reconnecting:auth_rejected']);
    await tick(4000); // the 6th refusal
    expect(statuses.at(-1)).toEqual({ state: 'auth_failed', previous: 'reconnecting', attempt: 7, reason: 'auth_rejected', nextRetryInMs: 2500 });
    await tick(2500);
    expect(supervisor.current).toBe('connected');
  });

  it('a refusal streak that outlasts authGraceWindowMs is auth_failed even before 5 refusals', async () => {
    const { supervisor, connector, statuses } = await connectedThenLost({ ...graced, backoff: { initialDelayMs: 40_000, maxDelayMs: 40_000, multiplier: 1 } });
    connector.connectPlan.push(...Array.from({ length: 4 }, authError));
    await tick(20_000); // the first refusal starts the streak
    await tick(20_000);
    await tick(20_000); // 40 s into the streak
    expect(supervisor.current).toBe('reconnecting');
    await tick(20_000); // 60 s: the window is over
    expect(supervisor.current).toBe('auth_failed');
    expect(connector.count('connect')).toBe(5);
    expect(statuses.filter((s) => s.state === 'auth_failed')).toHaveLength(1);
  });

  it('a credential last up longer ago than authGraceMs gets no grace', async () => {
    const { supervisor, connector } = await connectedThenLost({ ...graced, authGrace: { ...grace, withinMs: 10_000 } });
    connector.connectPlan.push(...Array.from({ length: 10 }, networkError), authError());
    // Ten network failures on the normal schedule take 35.5 s; the refusal comes after them.
    for (let i = 0; i < 100 && connector.count('connect') < 12; i++) await tick(500);
    expect(connector.count('connect')).toBe(12);
    expect(supervisor.current).toBe('auth_failed');
  });

  it('a successful connect ends the streak: the next refusals get the grace again', async () => {
    const { supervisor, connector } = await connectedThenLost();
    connector.connectPlan.push(...Array.from({ length: 5 }, authError), 'ok');
    for (let i = 0; i < 100 && supervisor.current !== 'connected'; i++) await tick(500);
    expect(supervisor.current).toBe('connected');
    connector.connectPlan.push(authError());
    connector.lose();
    const connects = connector.count('connect');
    for (let i = 0; i < 100 && connector.count('connect') === connects; i++) await tick(500);
    expect(supervisor.current).toBe('reconnecting');
  });

  it('a refusal that is not retriable waits the slow schedule\'s cap, whatever the grace', async () => {
    const { supervisor, connector, statuses } = setup(() => 0.5, graced);
    connector.connectPlan.push(new ConnectorError('auth_rejected', 'account deleted', { retriable: false, authFailure: true }));
    supervisor.start();
    await tick();
    expect(supervisor.current).toBe('auth_failed');
    expect(statuses.at(-1)?.nextRetryInMs).toBe(300_000);
  });
});

describe('ConnectionSupervisor: refused subscriptions', () => {
  it('are reported to the listener and leave the channel connected', async () => {
    const { supervisor, connector, statuses, subscriptions } = setup();
    supervisor.start();
    await tick();
    connector.ctx.hooks.subscriptionFailed?.('room-1', new ConnectorError('listen_refused', 'Room not found', { retriable: true }), 750);
    expect(subscriptions).toEqual([{ subscription: 'room-1', code: 'listen_refused', retryInMs: 750 }]);
    expect(supervisor.current).toBe('connected');
    expect(statuses.map((s) => s.state)).toEqual(['connecting', 'connected']);
    expect(connector.count('close')).toBe(0);
  });
});

describe('ConnectionSupervisor: stop()', () => {
  it('cancels a scheduled retry, closes the connector and reports disconnected', async () => {
    const { supervisor, connector, statuses } = setup();
    connector.connectPlan.push(networkError());
    supervisor.start();
    await tick();
    expect(supervisor.current).toBe('reconnecting');

    await supervisor.stop();
    expect(statuses.at(-1)).toEqual({ state: 'disconnected', previous: 'reconnecting', attempt: 1, reason: 'stopped' });
    await tick(60 * 60_000);
    expect(connector.calls).toEqual(['connect', 'close']);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('ignores a late lost notification after stop', async () => {
    const { supervisor, connector, statuses } = setup();
    supervisor.start();
    await tick();
    await supervisor.stop();
    const seen = statuses.length;
    connector.lose();
    await tick(60 * 60_000);
    expect(statuses).toHaveLength(seen);
    expect(supervisor.current).toBe('disconnected');
    expect(connector.count('connect')).toBe(1);
  });

  it('ignores a connect that completes after stop', async () => {
    const { supervisor, connector, states } = setup();
    const pending = deferred();
    connector.connectPlan.push(pending.promise);
    supervisor.start();
    await tick();
    await supervisor.stop();
    pending.resolve();
    await tick(60_000);
    expect(states()).toEqual(['connecting', 'disconnected']);
    expect(connector.count('subscribe')).toBe(0);
  });

  it('ignores a connect that fails after stop', async () => {
    const { supervisor, connector, states } = setup();
    const pending = deferred();
    connector.connectPlan.push(pending.promise);
    supervisor.start();
    await tick();
    await supervisor.stop();
    pending.reject(networkError());
    await tick(60_000);
    expect(states()).toEqual(['connecting', 'disconnected']);
    expect(connector.count('connect')).toBe(1);
  });

  it('can start again after stop, from attempt 0', async () => {
    const { supervisor, connector, statuses } = setup();
    connector.connectPlan.push(networkError(), networkError());
    supervisor.start();
    await tick(500);
    await supervisor.stop();
    supervisor.start();
    await tick();
    expect(statuses.at(-1)).toMatchObject({ state: 'connected' });
    expect(statuses.at(-2)).toMatchObject({ state: 'connecting', attempt: 0 });
  });
});

describe('ConnectionSupervisor: subscribe failures', () => {
  it('closes and reconnects when subscribe() rejects, then subscribes again', async () => {
    const { supervisor, connector, statuses, states } = setup();
    connector.subscribePlan.push(new ConnectorError('subscribe_failed', 'room refused', { retriable: true }));
    supervisor.start();
    await tick();
    expect(connector.calls).toEqual(['connect', 'subscribe', 'close']);
    expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', reason: 'subscribe_failed', attempt: 1, nextRetryInMs: 500 });

    await tick(500);
    expect(connector.calls).toEqual(['connect', 'subscribe', 'close', 'connect', 'subscribe']);
    expect(states()).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
  });

  it('does not reconnect twice when the connection is lost while subscribe() is pending and subscribe() then fails', async () => {
    const { supervisor, connector } = setup();
    const pending = deferred();
    connector.subscribePlan.push(pending.promise);
    supervisor.start();
    await tick();
    connector.lose();
    pending.reject(new Error('socket closed'));
    await tick(policy.backoff.maxDelayMs);
    expect(connector.count('connect')).toBe(2);
    expect(supervisor.current).toBe('connected');
  });
});

describe('ConnectionSupervisor: fault boundary', () => {
  it('a listener wrapped with hooks.guard that throws is reported with its arguments, and the next call still runs', async () => {
    const { supervisor, connector, faults, frames } = setup();
    const handler = connector.ctx.hooks.guard('message', (text: string) => {
      if (text === 'bad') throw new RangeError('Maximum call stack size exceeded');
      connector.emit({ event: 'message', payload: text });
    });
    supervisor.start();
    await tick();
    expect(() => handler('bad')).not.toThrow();
    handler('good');
    expect(faults).toHaveLength(1);
    expect(faults[0].where).toBe('message');
    expect(String(faults[0].err)).toContain('Maximum call stack');
    expect(frames.map((f) => f.frame.payload)).toEqual(['good']);
    await supervisor.stop();
  });

  it('a frame listener that throws is reported as a fault of that frame instead of reaching the connector', async () => {
    const faults: Array<{ where: string; input: unknown[] }> = [];
    let connector: FakeConnector | undefined;
    const supervisor = new ConnectionSupervisor((hooks) => (connector = new FakeConnector({ channelId: 'c', options: {}, hooks, logger: silent, mode: () => 'socket', store: { get: () => undefined, set: () => undefined }, policy })), policy, {
      status: () => undefined,
      frame: (frame) => {
        if (frame.event === 'boom') throw new Error('handler bug');
      },
      fault: (where, _err, input) => faults.push({ where, input }),
    }, silent);
    supervisor.start();
    await tick();
    expect(() => connector?.emit({ event: 'boom', payload: { a: 1 } })).not.toThrow();
    connector?.emit({ event: 'fine', payload: {} });
    expect(faults).toEqual([{ where: 'boom', input: [{ a: 1 }] }]);
    await supervisor.stop();
  });
});
