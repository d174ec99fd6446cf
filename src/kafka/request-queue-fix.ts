/**
 * A fix to kafkajs 2.2.4's per-connection request queue, installed by createKafka (client.ts) before it builds a client.
 *
 * After every response, kafkajs re-schedules a check of its pending requests even when none are pending and the
 * connection is not throttled; the delay is then `throttledUntil - Date.now()` with `throttledUntil` = -1, a large
 * negative number that Node clamps to 1 ms. So every connection that ever got a response polls itself about a
 * thousand times a second for as long as it stays open, idle or not (a few percent of a core per connection), and
 * Node 24 reports the negative delay once per process as `TimeoutNegativeWarning`
 * (docs/operations.md, "Runtime").
 *
 * With nothing pending there is nothing to check: a request queued later schedules its own check (`push`), and the
 * throttled case with requests pending keeps kafkajs's own timing. kafkajs is pinned to exactly 2.2.4 in
 * package.json, and request-queue-fix.spec.ts fails on another version, so an upgrade re-examines the fix (drop it
 * once kafkajs ships its own).
 */
interface RequestQueueInternals {
  pending: unknown[];
  scheduleCheckPendingRequests(): void;
}

const FIXED = Symbol.for('chatbridge.kafkajs.requestQueueFix');

/** Installs the fix (once: later calls find it installed). kafkajs has no export for the queue: it is required by path. */
export function fixKafkaJsRequestQueue(): void {
  const proto = (require('kafkajs/src/network/requestQueue') as { prototype: RequestQueueInternals & { [FIXED]?: true } }).prototype;
  const schedule = proto.scheduleCheckPendingRequests;
  if (proto[FIXED] || typeof schedule !== 'function') return;
  proto.scheduleCheckPendingRequests = function (this: RequestQueueInternals) {
    if (this.pending.length > 0) schedule.call(this);
  };
  proto[FIXED] = true;
}
