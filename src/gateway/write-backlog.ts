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
 * process, in packets and in characters of their data. The kernel's socket buffers come first: a client that stops
 * reading fills them before this grows.
 */
export class WriteBacklog {
  private created = 0;
  private flushed = 0;
  private written = 0;
  private createdChars = 0;
  private flushedChars = 0;
  private writtenChars = 0;
  private transport: EventEmitter;
  private readonly onCreate = (packet: unknown): void => {
    this.created++;
    this.createdChars += size(packet);
  };
  private readonly onFlush = (batch: unknown[]): void => {
    this.flushed += batch.length;
    for (const packet of batch) this.flushedChars += size(packet);
  };
  private readonly onDrain = (): void => {
    this.written = this.flushed;
    this.writtenChars = this.flushedChars;
  };
  private readonly onUpgrade = (): void => {
    // The old transport's last batch will not report; what it had was handed over or lost with it.
    this.onDrain();
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

  /** Characters (bytes for binary data) of the packets not yet written. */
  get pendingChars(): number {
    return Math.max(0, this.createdChars - this.writtenChars);
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

/** Length of an engine.io packet's data: a string (socket.io's encoding) or binary; 0 for control packets. */
function size(packet: unknown): number {
  const data = (packet as { data?: unknown } | null)?.data;
  if (typeof data === 'string') return data.length;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}
