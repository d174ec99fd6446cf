import { OffsetTracker } from './offset-tracker';

describe('OffsetTracker', () => {
  it('commits only past the longest finished prefix: a retrying record holds back later finished ones', () => {
    const t = new OffsetTracker();
    for (const o of [10n, 11n, 12n, 13n]) t.take(o);
    t.finish(11n);
    t.finish(13n);
    expect(t.toCommit()).toBeUndefined(); // 10 still pending
    t.finish(10n);
    expect(t.toCommit()).toBe(12n); // 10, 11 done; 12 pending
    t.finish(12n);
    expect(t.toCommit()).toBe(14n);
  });

  it('offers each new position once: nothing to commit until more finishes', () => {
    const t = new OffsetTracker();
    t.take(0n);
    t.finish(0n);
    expect(t.toCommit()).toBe(1n);
    t.committedUpTo(1n);
    expect(t.toCommit()).toBeUndefined();
    t.take(5n); // a gap (compaction or transaction markers) is fine
    t.finish(5n);
    expect(t.toCommit()).toBe(6n);
  });

  it('knows what it has taken, so records refetched after a rejoin are not delivered twice', () => {
    const t = new OffsetTracker();
    expect(t.seen(0n)).toBe(false);
    t.take(3n);
    t.take(4n);
    expect(t.seen(3n)).toBe(true);
    expect(t.seen(4n)).toBe(true);
    expect(t.seen(5n)).toBe(false);
    expect(t.next).toBe(5n);
    expect(() => t.take(4n)).toThrow('offset 4 taken twice');
  });

  it('ignores finishing an offset it does not hold (a settled delivery of a revoked partition)', () => {
    const t = new OffsetTracker();
    t.take(1n);
    t.finish(99n);
    t.finish(1n);
    t.finish(1n);
    expect(t.toCommit()).toBe(2n);
  });

  it('offers a new partition\'s start position for commit, so a restart resumes there; ignored once records flow', () => {
    const t = new OffsetTracker();
    t.startAt(40n);
    expect(t.toCommit()).toBe(40n);
    t.committedUpTo(40n);
    t.take(40n);
    t.startAt(99n);
    expect(t.toCommit()).toBeUndefined();
    t.finish(40n);
    expect(t.toCommit()).toBe(41n);
  });

  it('counts what it holds: finished offsets behind an unfinished one stay open until it finishes, then all drain', () => {
    const t = new OffsetTracker();
    for (let o = 0n; o < 1000n; o++) t.take(o);
    for (let o = 1n; o < 1000n; o++) t.finish(o);
    expect(t.openCount).toBe(1000); // offset 0 retries: nothing after it is committable, so nothing is let go
    expect(t.toCommit()).toBeUndefined();
    t.finish(0n);
    expect(t.openCount).toBe(0);
    expect(t.toCommit()).toBe(1000n);
  });

  it('gives back the last record taken when nothing took it over, so it is taken again; ignores any other offset', () => {
    const t = new OffsetTracker();
    t.take(7n);
    t.take(9n);
    t.untake(7n); // not the last one
    expect(t.openCount).toBe(2);
    t.untake(9n);
    expect(t.openCount).toBe(1);
    expect(t.seen(9n)).toBe(false);
    expect(t.seen(7n)).toBe(true);
    t.take(9n);
    t.finish(7n);
    t.finish(9n);
    expect(t.toCommit()).toBe(10n);
  });
});
