import { ConnectorError } from '../common/errors';
import { authError, networkError, policy, setup, tick, useFakeClock } from './__fixtures__/supervisor.fixture';
import type { SupervisorPolicy } from './supervisor';

useFakeClock();

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
