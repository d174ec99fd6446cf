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
});
