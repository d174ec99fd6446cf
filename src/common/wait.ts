/** Waits for `p` (its rejection ignored), at most `ms`. */
export async function withinMs(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** `p`, or a rejection with `Error(why)` after `ms` (`p` itself goes on; nobody waits for it then). */
export function withTimeout<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A wait that `cancel` ends at once (a stopping client must not keep the process alive for a backoff). */
export class Pause {
  private timer?: NodeJS.Timeout;
  private wake?: () => void;

  /** Resolves after `ms`, or at `cancel`. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  /** Ends the current wait now. */
  cancel(): void {
    clearTimeout(this.timer);
    this.wake?.();
  }
}

/** Resolves after `ms` (polling loops that wait for their own state to change). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
