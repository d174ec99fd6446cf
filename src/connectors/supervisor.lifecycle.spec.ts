import { ConnectorError } from '../common/errors';
import { deferred, FakeConnector, networkError, policy, setup, silent, tick, useFakeClock } from './__fixtures__/supervisor.fixture';
import { ConnectionSupervisor } from './supervisor';

useFakeClock();

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
    const supervisor = new ConnectionSupervisor((hooks) => (connector = new FakeConnector({ channelId: 'c', options: {}, hooks, logger: silent, mode: () => 'socket', store: { get: () => undefined, set: () => undefined, setJson: () => undefined }, policy })), policy, {
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

describe('ConnectionSupervisor: reconnectNow()', () => {
  it('closes the live connection and connects again at once, counting one reconnect; a lost() from the close schedules nothing', async () => {
    const { supervisor, connector, statuses, states, reconnects } = setup();
    supervisor.start();
    await tick();
    // The close makes the transport report the drop, as a real socket does.
    connector.close = async () => {
      connector.calls.push('close');
      connector.lose();
    };
    expect(await supervisor.reconnectNow()).toBe(true);
    expect(statuses[2]).toEqual({ state: 'reconnecting', previous: 'connected', attempt: 0, reason: 'reconnect_requested', nextRetryInMs: 0 });
    await tick();
    expect(states()).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    expect(connector.calls).toEqual(['connect', 'subscribe', 'close', 'connect', 'subscribe']);
    expect(supervisor.reconnects).toBe(1);
    expect(reconnects).toEqual(['reconnect_requested']);
    // No retry timer was left behind by the lost() during the close.
    await tick(60_000);
    expect(connector.count('connect')).toBe(2);
  });

  it('cuts the wait before a retry short, with the backoff reset', async () => {
    const { supervisor, connector } = setup();
    connector.connectPlan.push(networkError(), networkError(), networkError());
    supervisor.start();
    await tick(1500);
    expect(connector.count('connect')).toBe(3);
    await supervisor.reconnectNow();
    await tick();
    expect(connector.count('connect')).toBe(4);
    expect(supervisor.current).toBe('connected');
  });

  it('answers false once stopped, and does nothing', async () => {
    const { supervisor, connector } = setup();
    supervisor.start();
    await tick();
    await supervisor.stop();
    expect(await supervisor.reconnectNow()).toBe(false);
    await tick(1000);
    expect(connector.count('connect')).toBe(1);
  });
});
