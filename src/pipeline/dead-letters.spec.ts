import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Metrics } from '../health/metrics';
import { DeadLetters, type DeadLetter, type DeadLetterTarget } from './dead-letters';

const silent = pino({ level: 'silent' });

/** A durable target (as the Kafka DLQ topic) whose writes stay unanswered until released. */
class StalledTarget implements DeadLetterTarget {
  readonly name = 'kafka';
  readonly pending: Array<() => void> = [];
  available(): boolean {
    return true;
  }
  write(_item: DeadLetter): Promise<void> {
    return new Promise((resolve) => this.pending.push(resolve));
  }
}

const fileLines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string; frame?: unknown });

describe('DeadLetters', () => {
  const setup = () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dl-')), 'dl.jsonl');
    const dl = new DeadLetters(file, new Metrics({ defaultMetrics: false }), silent, 1000);
    const target = new StalledTarget();
    dl.useTarget(target);
    return { file, dl, target };
  };

  it('while the target is slow, at most 64 writes wait for it; the rest go to the file at once', () => {
    const { file, dl, target } = setup();
    for (let i = 0; i < 70; i++) void dl.write({ reason: 'test', origin: 'spec', frame: { event: 'e', payload: i } });
    expect(target.pending).toHaveLength(64);
    expect(fileLines(file)).toHaveLength(6);
  });

  it('an item too large or too deep for one target record goes to the file, written without recursion', async () => {
    const { file, dl, target } = setup();
    let deep: unknown = 1;
    for (let i = 0; i < 20_000; i++) deep = { a: deep };
    await dl.write({ reason: 'frame_too_deep', origin: 'spec', frame: { event: 'e', payload: deep } });
    await dl.write({ reason: 'event_too_large', origin: 'spec', frame: { event: 'e', payload: 'x'.repeat(2000) } });
    expect(target.pending).toHaveLength(0);
    expect(fileLines(file).map((l) => l.reason)).toEqual(['frame_too_deep', 'event_too_large']);
  });
});
