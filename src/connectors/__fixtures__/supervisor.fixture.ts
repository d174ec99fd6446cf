import pino from 'pino';
import { ConnectorError } from '../../common/errors';
import type { ChannelConfig } from '../../config/config.loader';
import type { Connector, ConnectorContext, ProviderDefinition, UpstreamFrame } from '../connector.interface';
import { ConnectionSupervisor, type StatusChange, type SupervisorPolicy } from '../supervisor';

/* The connector, policy and clock of the supervisor specs (supervisor*.spec.ts). */

export const policy: SupervisorPolicy = {
  backoff: { initialDelayMs: 1000, maxDelayMs: 8000, multiplier: 2 },
  authBackoff: { initialDelayMs: 30_000, maxDelayMs: 300_000, multiplier: 2 },
  stableAfterMs: 10_000,
};
const channel: ChannelConfig = { id: 'wa-sales', provider: 'zapthinker', mode: 'socket', options: {} };
export const silent = pino({ level: 'silent' });

export const networkError = () => new ConnectorError('network', 'cannot connect: ECONNREFUSED', { retriable: true });
export const authError = () => new ConnectorError('auth_rejected', 'API key rejected', { retriable: true, authFailure: true });
const lostError = () => new ConnectorError('disconnected', 'socket disconnected: transport close', { retriable: true });

/** A promise the test settles by hand. */
export function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
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
export class FakeConnector implements Connector {
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

export function setup(random: () => number = () => 0.5, supervised: SupervisorPolicy = policy) {
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
  /** The reason of each reconnect attempt the supervisor reported (what `chatbridge_reconnects_total` counts). */
  const reconnects: string[] = [];
  const supervisor = new ConnectionSupervisor((hooks) => definition.createConnector({ channelId: channel.id, options: channel.options, hooks, logger: silent, mode: () => 'socket', store: { get: () => undefined, set: () => undefined, setJson: () => undefined }, policy: supervised }), supervised, {
    status: (s) => statuses.push(s),
    frame: (frame, receivedAt) => frames.push({ frame, receivedAt }),
    fault: (where, err) => faults.push({ where, err }),
    subscriptionFailed: (subscription, err, retryInMs) => subscriptions.push({ subscription, code: err.code, retryInMs }),
    reconnecting: (reason) => reconnects.push(reason),
  }, silent, random);
  expect(created).toHaveLength(1);
  return { supervisor, connector: created[0], statuses, frames, faults, subscriptions, reconnects, states: () => statuses.map((s) => s.state) };
}

/** Lets pending promise callbacks run and advances the fake clock by `ms`. */
export const tick = (ms = 0) => jest.advanceTimersByTimeAsync(ms);

/** Runs each test of the calling spec on a fake clock. */
export function useFakeClock(): void {
  beforeEach(() => {
    jest.useFakeTimers({ now: new Date('2024-06-05T13:20:00Z') });
  });
  afterEach(() => {
    jest.useRealTimers();
  });
}
