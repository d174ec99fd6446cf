import { compileGlob, type GlobMatcher } from '../../common/glob';
import type { AnyCanonicalEvent } from '../../envelope/envelope';

/** Which events an endpoint or a live-stream subscriber wants (`types` globs on the CloudEvent type, `channels` ids). */
export interface EventFilter {
  /** True when the endpoint subscribed to this event. */
  matches(event: AnyCanonicalEvent): boolean;
}

/** Answers per event type remembered by one filter: the bridge's types are a fixed, small set. */
const MAX_REMEMBERED_TYPES = 256;

/**
 * Builds the filter of one endpoint; omitted lists match everything. The bridge's own events have no channel,
 * so a `channels` list excludes them; an endpoint never gets the `chatbridge.webhook.status` event about itself
 * (it is disabled then, and the event is for the others).
 */
export function eventFilter(opts: { id?: string; types?: readonly string[]; channels?: readonly string[] }): EventFilter {
  const types = opts.types ? typeMatcher(opts.types) : undefined;
  const channels = opts.channels ? new Set(opts.channels) : undefined;
  return {
    matches(event: AnyCanonicalEvent): boolean {
      if (channels && (event.channelid === undefined || !channels.has(event.channelid))) return false;
      if (event.type === 'chatbridge.webhook.status' && event.data.webhook.id === opts.id) return false;
      return !types || types(event.type);
    },
  };
}

/** Any of `globs`, each answer remembered per type so an event costs one lookup per filter after the first of its type. */
function typeMatcher(globs: readonly string[]): GlobMatcher {
  const matchers = globs.map(compileGlob);
  const known = new Map<string, boolean>();
  return (type) => {
    let hit = known.get(type);
    if (hit === undefined) {
      hit = matchers.some((m) => m(type));
      if (known.size < MAX_REMEMBERED_TYPES) known.set(type, hit);
    }
    return hit;
  };
}
