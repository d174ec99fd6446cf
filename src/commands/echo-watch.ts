import type { UpstreamCommand } from '../connectors/connector.interface';
import type { AnyCanonicalEvent, PipelineEvent } from '../envelope/envelope';

/** One command waiting for its upstream echo. */
export interface EchoWatch {
  /** The echo event, once seen (also when it came before the wait began). */
  readonly seen: () => AnyCanonicalEvent | undefined;
  /** Resolves with the echo, or undefined after `timeoutMs`. */
  wait(timeoutMs: number): Promise<AnyCanonicalEvent | undefined>;
  /** Stops watching. */
  cancel(): void;
}

type Matcher = (command: UpstreamCommand, event: AnyCanonicalEvent) => boolean;

interface Entry {
  command: UpstreamCommand;
  isEcho: Matcher;
  echo?: AnyCanonicalEvent;
  onEcho?: () => void;
}

/**
 * Watches published events for the echoes of commands in flight. A watch starts before the send, so an echo
 * that overtakes the upstream's (late or lost) answer is not missed; it ends when the command does.
 */
export class EchoWatcher {
  private readonly byChannel = new Map<string, Set<Entry>>();

  /** Fed with every published event (EventPipeline.observe). */
  observe(item: PipelineEvent): void {
    const channelId = item.event.channelid;
    const entries = channelId === undefined ? undefined : this.byChannel.get(channelId);
    if (!entries) return;
    for (const e of entries) {
      if (e.echo) continue;
      let matches = false;
      try {
        matches = e.isEcho(e.command, item.event);
      } catch {
        matches = false; // matchers are pure and total by contract; a throw means "not this one"
      }
      if (matches) {
        e.echo = item.event;
        e.onEcho?.();
        return; // one echo settles one command
      }
    }
  }

  /** Starts watching channel `channelId` for the echo of `command`. */
  watch(channelId: string, command: UpstreamCommand, isEcho: Matcher): EchoWatch {
    const entry: Entry = { command, isEcho };
    let set = this.byChannel.get(channelId);
    if (!set) this.byChannel.set(channelId, (set = new Set()));
    set.add(entry);
    const cancel = (): void => {
      set.delete(entry);
      if (!set.size) this.byChannel.delete(channelId);
    };
    return {
      seen: () => entry.echo,
      cancel,
      wait: (timeoutMs) => {
        if (entry.echo) return Promise.resolve(entry.echo);
        return new Promise((resolve) => {
          const timer = setTimeout(() => {
            entry.onEcho = undefined;
            resolve(undefined);
          }, timeoutMs);
          timer.unref?.();
          entry.onEcho = () => {
            clearTimeout(timer);
            resolve(entry.echo);
          };
        });
      },
    };
  }
}
