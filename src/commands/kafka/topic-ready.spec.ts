import { Pause } from './topic-ready';

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
