import type { Logger } from 'pino';
import { describeError } from '../../common/errors';
import type { UpstreamFrame } from '../connector.interface';
import { TRANSCRIPT_MESSAGE } from './captivate.frames';
import type { RecentConversations } from './captivate.recent';
import { transcriptEntries } from './captivate.transcript';

/** Transcript requests in flight at once during a gap-fill. */
const CONCURRENCY = 4;

/** Reads one conversation's transcript: its body and where it came from (e.g. `conversation_transcript`). */
export type TranscriptRead = (conversationId: string) => Promise<{ body: unknown; source: string }>;

/**
 * Recovers bot/agent replies the socket missed (replies routed to a dead socket are lost; the transcript has
 * them). Each reply comes out as a `transcript_message` frame whose dedupe key equals the
 * live frame's, so what was already published is dropped by the pipeline.
 */
export class TranscriptGapFill {
  private generation = 0;

  constructor(
    private readonly recent: RecentConversations,
    private readonly emit: (frame: UpstreamFrame) => void,
    private readonly log: Logger,
  ) {}

  /**
   * Emits the replies of one transcript that come after `last` (default: the last message seen in that conversation).
   * Entries without an upstream id are skipped: they could not be matched with what was already published, so they
   * would come out twice under a different id.
   */
  replay(conversationId: string | undefined, body: unknown, source: string, last = conversationId ? this.recent.lastKey(conversationId) : undefined): void {
    if (!conversationId) return;
    const entries = transcriptEntries(body);
    const seen = last ? entries.findIndex((e) => e.key === last) : -1;
    let skipped = 0;
    for (const e of entries.slice(seen + 1)) {
      if (e.role !== 'bot' && e.role !== 'agent') continue;
      if (!e.key) {
        skipped++;
        continue;
      }
      const payload: Record<string, unknown> = { conversation_id: conversationId, source, index: e.index, entry: e.entry };
      if (e.eventId) payload.event_id = e.eventId;
      this.emit({ event: TRANSCRIPT_MESSAGE, payload });
      this.recent.touch(conversationId, e.key);
    }
    if (skipped) this.log.debug({ conversationId, skipped }, 'transcript entries without an id were not replayed');
  }

  /**
   * Reads the transcript of every recent conversation; a newer run (or `cancel`) stops an older one. Each replay starts
   * after the watermark as it was when its request left: replies that arrive live meanwhile are in the transcript too,
   * and must not move the start past the ones that went to a dead socket (those come out once, by key).
   */
  async run(read: TranscriptRead): Promise<void> {
    const gen = ++this.generation;
    const ids = this.recent.ids();
    let next = 0;
    let failed = 0;
    const worker = async (): Promise<void> => {
      while (gen === this.generation && next < ids.length) {
        const id = ids[next++];
        const from = this.recent.lastKey(id);
        try {
          const { body, source } = await read(id);
          if (gen === this.generation) this.replay(id, body, source, from);
        } catch (err) {
          failed++;
          this.log.debug({ conversationId: id, err: describeError(err) }, 'transcript read failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ids.length) }, worker));
    if (gen === this.generation) this.log.info({ conversations: ids.length, failed }, 'transcript gap-fill done');
  }

  /** Stops the run in progress. */
  cancel(): void {
    this.generation++;
  }
}
