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

/** Builds the filter of one endpoint; omitted lists match everything. */
export function eventFilter(opts: { types?: readonly string[]; channels?: readonly string[] }): EventFilter {
  const types = opts.types?.map(globToRegExp);
  const channels = opts.channels ? new Set(opts.channels) : undefined;
  return {
    matches(event: AnyCanonicalEvent): boolean {
      if (channels && !channels.has(event.channelid)) return false;
      return !types || types.some((re) => re.test(event.type));
    },
  };
}
