import type { EventEmitter } from 'node:events';

/** The parts of an engine.io connection (`socket.conn`) the backlog reads: its events and its current transport. */
export interface EngineConnection extends EventEmitter {
  transport: EventEmitter;
}

/**
 * Packets given to one engine.io connection that the operating system has not taken yet: those waiting in the
 * connection's write buffer plus those its transport is still writing. engine.io reports packets as created
 * (`packetCreate`), handed to the transport (`flush`, with the batch) and written (the transport's `drain`, once
 * the whole batch is written), so the difference is the memory a subscriber that stopped reading holds in this
 * process. The kernel's socket buffers come first: a client that stops reading fills them before this grows.
 */
export class WriteBacklog {
  private created = 0;
  private flushed = 0;
  private written = 0;
  private transport: EventEmitter;
  private readonly onCreate = (): void => void this.created++;
  private readonly onFlush = (batch: unknown[]): void => void (this.flushed += batch.length);
  private readonly onDrain = (): void => void (this.written = this.flushed);
  private readonly onUpgrade = (): void => {
    // The old transport's last batch will not report; what it had was handed over or lost with it.
    this.written = this.flushed;
    this.follow(this.conn.transport);
  };

  constructor(private readonly conn: EngineConnection) {
    this.transport = conn.transport;
    conn.on('packetCreate', this.onCreate);
    conn.on('flush', this.onFlush);
    conn.on('upgrade', this.onUpgrade);
    this.transport.on('drain', this.onDrain);
  }

  /** Packets not yet written to the operating system. */
  get pending(): number {
    // Packets created before the backlog was attached may be flushed after it: never below zero.
    return Math.max(0, this.created - this.written);
  }

  /** Stops listening (the connection may live on without a subscription). */
  detach(): void {
    this.conn.off('packetCreate', this.onCreate);
    this.conn.off('flush', this.onFlush);
    this.conn.off('upgrade', this.onUpgrade);
    this.transport.off('drain', this.onDrain);
  }

  private follow(transport: EventEmitter): void {
    this.transport.off('drain', this.onDrain);
    this.transport = transport;
    this.transport.on('drain', this.onDrain);
  }
}
