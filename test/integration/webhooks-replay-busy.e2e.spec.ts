import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, readlinkSync } from 'node:fs';
import { metricValue, startTestBridge, TEST_TOKEN, waitFor, type TestBridge } from '../helpers/bridge-harness';
import { newSecret, ReceiverPool } from '../helpers/webhook-receiver';

/**
 * `POST /v1/webhooks/:id/replay` runs one at a time per endpoint. A replay is held mid-read by making the
 * dead-letter file a named pipe (FIFO): it reads until the test closes the pipe's writing end.
 */
describe('webhook replay: one at a time per endpoint (e2e)', () => {
  let bridge: TestBridge | undefined;
  const receivers = new ReceiverPool();
  let writer: number | undefined;

  afterEach(async () => {
    if (writer !== undefined) closeSync(writer);
    writer = undefined;
    await bridge?.close();
    bridge = undefined;
    await receivers.stopAll();
  });

  async function replay(id: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${bridge!.url}/v1/webhooks/${id}/replay`, {
      method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ ids: ['f'.repeat(32)] }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  /** Readers of the pipe in this process (the bridge runs in it): one per replay reading the dead-letter file. */
  function pipeReaders(path: string): number {
    let n = 0;
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`).endsWith(path) && Number(fd) !== writer) n++;
      } catch {
        // The fd closed while listing.
      }
    }
    return n;
  }
  /** Opens the pipe's writing end once a reader waits on it (non-blocking: fails until then). */
  function openWriter(path: string): number | undefined {
    try {
      return openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
  }

  it('a second replay (or a dead-letter listing) of an endpoint while one runs is 409 with a clear error; other endpoints are not held; after it ends replays run again', async () => {
    const [crm, erp] = [await receivers.start(), await receivers.start()];
    bridge = await startTestBridge({ webhooks: [{ id: 'crm', url: crm.url, secret: newSecret() }, { id: 'erp', url: erp.url, secret: newSecret() }] });
    const fifo = bridge.deadLetterFile;
    execFileSync('mkfifo', [fifo]);

    const first = replay('crm');
    // The pipe has a writer (kept open) once the first replay is reading it: it now reads until the writer closes.
    writer = await waitFor('the first replay reading the dead-letter file', () => openWriter(fifo));
    const other = replay('erp');
    await waitFor('the replay of erp reading too', () => pipeReaders(fifo) === 2);

    const second = await replay('crm');
    expect(second).toEqual({
      status: 409,
      body: { statusCode: 409, error: 'Conflict', message: 'a replay of webhook endpoint "crm" is already running: wait for its answer, then send this one again' },
    });
    // A dead-letter listing of crm reads the same sources: not meanwhile either.
    const listing = await fetch(`${bridge.url}/v1/webhooks/crm/dead-letters`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect({ status: listing.status, body: await listing.json() }).toEqual({
      status: 409,
      body: { statusCode: 409, error: 'Conflict', message: 'the dead letters of webhook endpoint "crm" are being read (a replay or another page): send this request again after its answer' },
    });
    expect(metricValue((await bridge.get('/metrics')).text, 'chatbridge_refused_total', { origin: 'replay', reason: 'replay_running' })).toBe(2);

    closeSync(writer);
    writer = undefined;
    const done = { endpoint: 'crm', matched: 0, replayed: 0, skippedMalformed: 0, sources: { file: 0, kafka: 0 } };
    expect(await first).toEqual({ status: 200, body: done });
    expect(await other).toEqual({ status: 200, body: { ...done, endpoint: 'erp' } });

    // Finished: the next replay of crm runs (it reads the pipe again; an empty write end lets it finish). The earlier
    // replays' read ends close asynchronously: a writer opened while one lingers would not be the third's.
    await waitFor('the earlier replays closing the pipe', () => pipeReaders(fifo) === 0);
    const third = replay('crm');
    const again = await waitFor('the third replay reading', () => openWriter(fifo));
    closeSync(again);
    expect(await third).toEqual({ status: 200, body: done });
  });
});
