import { Pause, withinMs } from './wait';

describe('Pause', () => {
  it('ends a long backoff wait at once when cancelled, so a stopping client does not hold the process', async () => {
    jest.useFakeTimers();
    try {
      const pause = new Pause();
      let done = false;
      const waiting = pause.wait(30_000).then(() => (done = true));
      await Promise.resolve();
      expect(done).toBe(false);
      pause.cancel();
      await waiting;
      expect(done).toBe(true);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('withinMs', () => {
  it('returns when the promise settles (a rejection included) or when the bound passes, whichever is first', async () => {
    await expect(withinMs(Promise.reject(new Error('x')), 1000)).resolves.toBeUndefined();
    jest.useFakeTimers();
    try {
      let done = false;
      const bounded = withinMs(new Promise(() => undefined), 30_000).then(() => (done = true));
      await jest.advanceTimersByTimeAsync(29_999);
      expect(done).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      await bounded;
      expect(done).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });
});
