import type { PipelineEvent } from '../../envelope/envelope';

/** FIFO of pipeline events with O(1) push and amortised O(1) take; `peek` never copies more than asked. */
export class EventQueue {
  private items: PipelineEvent[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: PipelineEvent): void {
    this.items.push(item);
  }

  /** The oldest `n` items, left in place. */
  peek(n: number): PipelineEvent[] {
    return this.items.slice(this.head, this.head + n);
  }

  /** Removes and returns the oldest `n` items. */
  take(n: number): PipelineEvent[] {
    const out = this.items.slice(this.head, this.head + n);
    this.head += out.length;
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }
}
