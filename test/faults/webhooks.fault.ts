import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricValue, TEST_TOKEN } from '../helpers/bridge-harness';
import { BridgeProcess, freePort } from '../helpers/bridge-process';
import { messageEvent, newSecret, ReceiverPool, verify } from '../helpers/webhook-receiver';
import { expectHealthy, report, startBuiltBridge, until } from './harness';

/**
 * Webhook endpoints' limits against the built bridge (no Kafka: the dead letters are in the file). A replay or a
 * dead-letter listing of an endpoint while another read of its dead letters runs is refused with a 409 and counted,
 * another endpoint is not held, and once the read ends the next replay runs and delivers. A webhook whose id is one
 * of the bridge's own dead-letter origins stops the start with a config error naming it.
 */
describe('fault rows: webhooks', () => {
  const receivers = new ReceiverPool();
  let bridge: BridgeProcess | undefined;
  let writer: number | undefined;

  afterEach(async () => {
    if (writer !== undefined) closeSync(writer);
    writer = undefined;
    await bridge?.kill();
    bridge = undefined;
    await receivers.stopAll();
  });

  const call = async (b: BridgeProcess, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${b.url}${path}`, {
      method, headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** The bridge's open file descriptors on `path`: one per replay or listing reading the dead-letter file. */
  const readersOf = (pid: number, path: string) => readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
    } catch {
      return false; // closed while listing
    }
  }).length;
  /** Opens the pipe's writing end once a reader waits on it (non-blocking: fails until then). */
  const openWriter = (path: string) => {
    try {
      return openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
  };

  it('a second replay and a listing of an endpoint while its dead letters are read: 409, counted, another endpoint not held; the next replay delivers', async () => {
    const [crm, erp] = [await receivers.start(), await receivers.start()];
    const crmSecret = newSecret();
    const b = (bridge = await startBuiltBridge('faults-webhooks-replay', { webhooks: [{ id: 'crm', url: crm.url, secret: crmSecret }, { id: 'erp', url: erp.url, secret: newSecret() }] }));
    const pid = b.pid as number;
    // The dead-letter file as a named pipe: a read of it lasts until the test closes the pipe's writing end.
    const file = join(b.dir, 'dead-letter.jsonl');
    execFileSync('mkfifo', [file]);
    const { event } = messageEvent('wa', '5511987654321', 'replayed after the refusals');
    const body = { ids: [event.id] };

    const first = call(b, 'POST', '/v1/webhooks/crm/replay', body);
    writer = await until('the first replay reading the dead letters', () => openWriter(file));
    const other = call(b, 'POST', '/v1/webhooks/erp/replay', body);
    await until('the replay of erp reading too', () => readersOf(pid, file) === 2);

    const t0 = performance.now();
    const second = await call(b, 'POST', '/v1/webhooks/crm/replay', body);
    const listing = await call(b, 'GET', '/v1/webhooks/crm/dead-letters');
    const refusedMs = Math.round(performance.now() - t0);
    expect(second).toEqual({ status: 409, body: { statusCode: 409, error: 'Conflict', message: 'a replay of webhook endpoint "crm" is already running: wait for its answer, then send this one again' } });
    expect(listing).toEqual({ status: 409, body: { statusCode: 409, error: 'Conflict', message: 'the dead letters of webhook endpoint "crm" are being read (a replay or another page): send this request again after its answer' } });
    const refused = metricValue(await (await fetch(`${b.url}/metrics`)).text(), 'chatbridge_refused_total', { origin: 'replay', reason: 'replay_running' });
    expect(refused).toBe(2);
    const heldHealthzMs = await expectHealthy(b);

    closeSync(writer);
    writer = undefined;
    const nothing = { matched: 0, replayed: 0, skippedMalformed: 0, sources: { file: 0, kafka: 0 } };
    expect(await first).toEqual({ status: 200, body: { endpoint: 'crm', ...nothing } });
    expect(await other).toEqual({ status: 200, body: { endpoint: 'erp', ...nothing } });

    // The read is over: the next replay runs, here against an ordinary file holding one dead letter of crm.
    unlinkSync(file);
    writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), reason: 'webhook_rejected', origin: 'crm', channelId: 'wa', event })}\n`);
    const t1 = performance.now();
    const next = await call(b, 'POST', '/v1/webhooks/crm/replay', body);
    expect(next).toEqual({ status: 200, body: { endpoint: 'crm', matched: 1, replayed: 1, skippedMalformed: 0, sources: { file: 1, kafka: 0 } } });
    const [delivered] = await crm.waitForDelivered(1);
    const nextMs = Math.round(performance.now() - t1);
    expect(delivered.headers['webhook-id']).toBe(event.id);
    expect(verify(crmSecret, delivered)).toBeTruthy();
    expect((await call(b, 'GET', '/v1/webhooks/crm/dead-letters')).status).toBe(200);
    const healthzMs = await expectHealthy(b);
    report('webhooks/replay-one-at-a-time', {
      second: second.status, listing: listing.status, refusedMs, refusedMetric: refused, otherEndpoint: (await other).status, heldHealthzMs: Math.round(heldHealthzMs),
      nextReplay: next.status, replayed: Number(next.body.replayed), nextDeliveredMs: nextMs, healthzMs: Math.round(healthzMs),
    });
  });

  it('webhooks whose ids are reserved dead-letter origins: the start stops with a config error naming each', async () => {
    const receiver = await receivers.start();
    const reserved = ['kafka', 'webhooks', 'kafka-commands'];
    const webhooks = [{ id: 'crm', url: receiver.url, secret: newSecret() }, ...reserved.map((id) => ({ id, url: receiver.url, secret: newSecret() }))];
    const b = (bridge = new BridgeProcess('faults-webhooks-reserved', { webhooks }, await freePort(), { entry: 'dist' }));
    const t0 = performance.now();
    await expect(b.start(30_000)).rejects.toThrow(/exited/);
    const exitMs = Math.round(performance.now() - t0);
    expect(b.exit).toEqual({ code: 1, signal: null });
    const stderr = b.logs.map((l) => (typeof l.raw === 'string' ? l.raw : JSON.stringify(l))).join('\n');
    const named = reserved.filter((id, i) => stderr.includes(`webhooks[${i + 1}].id: "${id}" is reserved`));
    expect(named).toEqual(reserved);
    expect(stderr).not.toContain('webhooks[0].id');
    expect(receiver.requests).toHaveLength(0);
    report('webhooks/reserved-ids', { exitCode: b.exit?.code ?? -1, exitMs, reserved: reserved.length, named: named.length });
  });
});
