import type { ConversationRegistry } from '../../src/connectors/connector.interface';

/**
 * A shared conversation registry as every replica sees it (the state topic in production; shared-state.e2e covers
 * that), for connectors on two "replicas" in one test: records are delivered to the watchers asynchronously, as a
 * topic would deliver them.
 */
export class MemoryRegistry {
  readonly values = new Map<string, unknown>();
  private readonly listeners = new Set<(id: string, v: unknown) => void>();

  view(): ConversationRegistry {
    return {
      ready: async () => true,
      all: () => new Map(this.values),
      save: (id, value) => {
        if (value === null) this.values.delete(id);
        else this.values.set(id, value);
        setImmediate(() => { for (const l of this.listeners) l(id, value); });
      },
      watch: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
    };
  }
}
