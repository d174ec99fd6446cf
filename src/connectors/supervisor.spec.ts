import { backoffCeiling } from '../common/backoff';
import { ConnectorError } from '../common/errors';
import { networkError, policy, setup, tick, useFakeClock } from './__fixtures__/supervisor.fixture';

useFakeClock();

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
    const { supervisor, connector, statuses, states, reconnects } = setup();
    connector.connectPlan.push(networkError(), networkError(), networkError(), 'ok');
    supervisor.start();
    await tick();
    await tick(500); // 2nd attempt
    await tick(1000); // 3rd attempt
    expect(connector.count('connect')).toBe(3);
    expect(states()).toEqual(['connecting', 'reconnecting']);
    expect(supervisor.reconnects).toBe(3);
    // Each attempt is reported for the metric, also those the status stream leaves out.
    expect(reconnects).toEqual(['network', 'network', 'network']);
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
