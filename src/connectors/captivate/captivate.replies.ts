import { CommandError } from '../../common/errors';
import type { CaptivateEvent } from './captivate.frames';

/** What a command waits for on the socket that carries its reply. */
export interface ReplySpec {
  /** For error messages, e.g. `conversation_start`. */
  what: string;
  /** The reply that completes the wait. */
  accepts(ev: CaptivateEvent): boolean;
  /** A reason when `ev` is an upstream error for this wait (a `general_error` naming its conversation). */
  fails?(ev: CaptivateEvent): string | undefined;
  /** The reply is the connector's own business (keepalive) and is not published. */
  swallow?: boolean;
  timeoutMs: number;
  /** True for reads: nothing happened upstream, so asking again after a timeout or a drop is safe. */
  idempotent?: boolean;
}

interface Waiter {
  socket: object;
  spec: ReplySpec;
  timer: NodeJS.Timeout;
  resolve(ev: CaptivateEvent): void;
  reject(err: CommandError): void;
}

/**
 * Commands waiting for an upstream reply, matched in the order they were sent (Captivate replies carry
 * no request id; `conversation.start` is serialised by the connector so the order is unambiguous).
 */
export class PendingReplies {
  private waiters: Waiter[] = [];

  /** Starts waiting for a reply on `socket`; `cancel` withdraws the wait (e.g. when the send failed). */
  expect(socket: object, spec: ReplySpec): { reply: Promise<CaptivateEvent>; cancel(): void } {
    let waiter!: Waiter;
    const reply = new Promise<CaptivateEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.remove(waiter);
        reject(new CommandError('timeout', `${spec.what}: no reply within ${spec.timeoutMs} ms`, { retriable: spec.idempotent === true, sent: spec.idempotent !== true }));
      }, spec.timeoutMs);
      timer.unref?.();
      waiter = { socket, spec, timer, resolve, reject };
    });
    this.waiters.push(waiter);
    return { reply, cancel: () => this.remove(waiter) };
  }

  /** Offers an incoming event; returns true when it was a swallowed reply (not to be published). */
  settle(socket: object, ev: CaptivateEvent): boolean {
    for (const w of this.waiters) {
      if (w.socket !== socket) continue;
      if (w.spec.accepts(ev)) {
        this.remove(w);
        w.resolve(ev);
        return w.spec.swallow === true;
      }
      const reason = w.spec.fails?.(ev);
      if (reason !== undefined) {
        this.remove(w);
        w.reject(new CommandError('upstream_error', `${w.spec.what}: ${reason}`, { retriable: false, sent: true }));
        return false;
      }
    }
    return false;
  }

  /** Fails every wait on a socket that closed (`socket` undefined: every wait). */
  dropSocket(socket: object | undefined, why: string): void {
    for (const w of [...this.waiters]) {
      if (socket !== undefined && w.socket !== socket) continue;
      this.remove(w);
      const retriable = w.spec.idempotent === true;
      // The request left on this socket; only a read is safe to repeat.
      w.reject(new CommandError('connection_lost', `${w.spec.what}: ${why} before the reply`, { retriable, sent: !retriable }));
    }
  }

  private remove(w: Waiter): void {
    clearTimeout(w.timer);
    this.waiters = this.waiters.filter((x) => x !== w);
  }
}
