import type { AnyCanonicalEvent } from '../../envelope/envelope';

/** Which events an endpoint wants (SPEC §3: `types` globs on the CloudEvent type, `channels` ids). */
export interface EventFilter {
  /** True when the endpoint subscribed to this event. */
  matches(event: AnyCanonicalEvent): boolean;
}

/** A type glob as a RegExp: `*` matches any run of characters (dots included), everything else literally. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`);
}

/**
 * Builds the filter of one endpoint; omitted lists match everything. The bridge's own events have no channel,
 * so a `channels` list excludes them; an endpoint never gets the `chatbridge.webhook.status` event about itself
 * (it is disabled then, and the event is for the others).
 */
export function eventFilter(opts: { id?: string; types?: readonly string[]; channels?: readonly string[] }): EventFilter {
  const types = opts.types?.map(globToRegExp);
  const channels = opts.channels ? new Set(opts.channels) : undefined;
  return {
    matches(event: AnyCanonicalEvent): boolean {
      if (channels && (event.channelid === undefined || !channels.has(event.channelid))) return false;
      if (event.type === 'chatbridge.webhook.status' && event.data.webhook.id === opts.id) return false;
      return !types || types.some((re) => re.test(event.type));
    },
  };
}
