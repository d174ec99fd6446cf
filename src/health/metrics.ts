import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
import { CHANNEL_STATES, type ChannelState } from '../envelope/event-types';

/** Each channel's state as `GET /v1/channels` shows it, read at every scrape. */
export type ChannelStates = () => Iterable<{ channel: string; state: ChannelState }>;

/**
 * One labelled series of a counter counted on a hot path (once per event): `inc` only adds to a number, and the counter
 * takes what was added when it is read (a scrape, `get()`). prom-client's own `inc` hashes the labels and builds
 * objects on every call, which was a measurable part of a webhook delivery's cost.
 */
export class HotCount {
  pending = 0;

  constructor(readonly labels: LabelValues<string>) {}

  inc(by = 1): void {
    this.pending += by;
  }
}

/** Every Prometheus metric of the bridge, on one registry (exposed at `/metrics`). */
export class Metrics {
  readonly registry = new Registry();
  private channelStates?: ChannelStates;
  /** The hot series of each counter that has some, by their labels (one HotCount per series), added to it when it is read. */
  private readonly hot = new Map<Counter<string>, Map<string, HotCount>>();
  /** `eventsOutOf`'s series, one set per sink, shared by all its callers (every webhook endpoint). */
  private readonly eventsOutBySink = new Map<string, (channel: string, type: string) => HotCount>();
  /** Gauges read at every scrape rather than set on every event: per gauge, each series' labels and reader. */
  private readonly reads = new Map<Gauge<string>, Map<string, { labels: LabelValues<string>; read: () => number }>>();
  readonly eventsIn: Counter<'channel' | 'type'> = new Counter({ name: 'chatbridge_events_in_total', help: 'Canonical events produced from upstream frames, by channel and type', labelNames: ['channel', 'type'], registers: [this.registry], collect: (): void => this.flushHot(this.eventsIn) });
  readonly eventsOut: Counter<'sink' | 'channel' | 'type'> = new Counter({ name: 'chatbridge_events_out_total', help: 'Events acknowledged by a sink, by sink (kafka, stdout, webhooks: one per endpoint that answered 2xx), channel and type', labelNames: ['sink', 'channel', 'type'], registers: [this.registry], collect: (): void => this.flushHot(this.eventsOut) });
  readonly duplicates = new Counter({ name: 'chatbridge_events_deduplicated_total', help: 'Events not republished because their id was seen recently', labelNames: ['channel'], registers: [this.registry] });
  readonly dedupeEntries: Gauge<string> = new Gauge({ name: 'chatbridge_dedupe_entries', help: 'Event ids held in the dedupe window', registers: [this.registry], collect: (): void => this.readGauge(this.dedupeEntries) });
  readonly malformed = new Counter({ name: 'chatbridge_frames_malformed_total', help: 'Upstream frames that could not be interpreted (published as provider events or dead-lettered)', labelNames: ['channel'], registers: [this.registry] });
  readonly frames: Counter<'channel'> = new Counter({ name: 'chatbridge_frames_total', help: 'Upstream frames received', labelNames: ['channel'], registers: [this.registry], collect: (): void => this.flushHot(this.frames) });
  readonly reconnects = new Counter({ name: 'chatbridge_reconnects_total', help: 'Reconnect attempts of a channel\'s upstream connection, each one (a retry after a failed attempt or a lost connection, or POST /v1/channels/:id/reconnect), by channel and reason (the error code, or reconnect_requested)', labelNames: ['channel', 'reason'], registers: [this.registry] });
  readonly subscriptionFailures = new Counter({ name: 'chatbridge_subscription_failures_total', help: 'Subscriptions of a connected channel (a Watchers room, a jwt-websocket channel) the upstream refused or did not confirm, each retried alone while the connection stays up, by channel and code', labelNames: ['channel', 'code'], registers: [this.registry] });
  readonly channelState = new Gauge({
    name: 'chatbridge_channel_state',
    help: '1 for the current state of each channel (connecting, connected, reconnecting, auth_failed; inbound: webhook mode, events come through POST /v1/inbound; disconnected: no socket here and not in webhook mode, e.g. another replica holds it)',
    labelNames: ['channel', 'state'],
    registers: [this.registry],
    // Read at each scrape: a state follows both the connection and the channel's mode, which change in different places.
    collect: () => this.collectChannelStates(),
  });
  readonly channelsHeld = new Gauge({ name: 'chatbridge_channels_held', help: 'Channels this replica holds (with cluster.enabled, the ones of its assigned partitions)', registers: [this.registry] });
  readonly ownershipChanges = new Counter({ name: 'chatbridge_channel_ownership_changes_total', help: 'Channels this replica took over or released, by direction (gained, lost) and reason (assigned: a rebalance; unassigned: held with no assignment while Kafka is unreachable at start)', labelNames: ['direction', 'reason'], registers: [this.registry] });
  readonly queueDepth: Gauge<'sink'> = new Gauge({ name: 'chatbridge_sink_queue_depth', help: 'Events waiting in a sink queue', labelNames: ['sink'], registers: [this.registry], collect: (): void => this.readGauge(this.queueDepth) });
  readonly sinkUp = new Gauge({ name: 'chatbridge_sink_up', help: '1 when the sink can deliver', labelNames: ['sink'], registers: [this.registry] });
  readonly publishLatency = new Histogram({
    name: 'chatbridge_publish_duration_seconds',
    help: 'Time from frame receipt to sink acknowledgement',
    labelNames: ['sink'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly publishErrors = new Counter({ name: 'chatbridge_sink_errors_total', help: 'Failed delivery attempts by sink', labelNames: ['sink'], registers: [this.registry] });
  readonly webhookAttempts: Counter<'endpoint'> = new Counter({ name: 'chatbridge_webhook_attempts_total', help: 'HTTP attempts to webhook endpoints (retries included)', labelNames: ['endpoint'], registers: [this.registry], collect: (): void => this.flushHot(this.webhookAttempts) });
  readonly webhookDelivered: Counter<'endpoint'> = new Counter({ name: 'chatbridge_webhook_delivered_total', help: 'Events a webhook endpoint acknowledged with 2xx', labelNames: ['endpoint'], registers: [this.registry], collect: (): void => this.flushHot(this.webhookDelivered) });
  readonly webhookFailures = new Counter({ name: 'chatbridge_webhook_failures_total', help: 'Failed webhook attempts by endpoint and class (3xx, 4xx, 5xx, timeout, network)', labelNames: ['endpoint', 'class'], registers: [this.registry] });
  readonly webhookPending: Gauge<'endpoint'> = new Gauge({
    name: 'chatbridge_webhook_pending',
    help: 'Events held for a webhook endpoint: queued, in flight or waiting to retry',
    labelNames: ['endpoint'],
    registers: [this.registry],
    collect: (): void => this.readGauge(this.webhookPending),
  });
  readonly webhookLatency = new Histogram({
    name: 'chatbridge_webhook_delivery_duration_seconds',
    help: 'Time from frame receipt to the endpoint\'s 2xx, retries included',
    labelNames: ['endpoint'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36_000, 129_600],
    registers: [this.registry],
  });
  readonly webhookDisabled = new Gauge({ name: 'chatbridge_webhook_endpoint_disabled', help: '1 while a webhook endpoint is disabled (it answered 410)', labelNames: ['endpoint'], registers: [this.registry] });
  readonly webhookCircuitOpen = new Gauge({ name: 'chatbridge_webhook_circuit_open', help: '1 while a webhook endpoint\'s circuit breaker is open or probing', labelNames: ['endpoint'], registers: [this.registry] });
  readonly webhookConsumerLag = new Gauge({ name: 'chatbridge_webhook_consumer_lag', help: 'With Kafka: events of the events topic a webhook endpoint has not finished (delivered or dead-lettered), per partition, as of its last commit', labelNames: ['endpoint', 'partition'], registers: [this.registry] });
  readonly webhookReplayed = new Counter({ name: 'chatbridge_webhook_replayed_total', help: 'Dead-lettered events re-submitted to a webhook endpoint by POST /v1/webhooks/:id/replay', labelNames: ['endpoint'], registers: [this.registry] });
  readonly inboundRequests = new Counter({ name: 'chatbridge_inbound_requests_total', help: 'Posts to /v1/inbound by channel and outcome (accepted, unauthorized, malformed, too_large, busy, unreadable, refused, unknown_channel, not_durable: Kafka did not take its events in time)', labelNames: ['channel', 'outcome'], registers: [this.registry] });
  readonly inboundInFlight = new Gauge({ name: 'chatbridge_inbound_in_flight', help: 'Inbound posts of a channel whose body is being read or handled (at most inbound.maxInFlight)', labelNames: ['channel'], registers: [this.registry] });
  readonly streamSubscribers = new Gauge({ name: 'chatbridge_stream_subscribers', help: 'socket.io clients subscribed to the live event stream', registers: [this.registry] });
  readonly streamEvents = new Counter({ name: 'chatbridge_stream_events_total', help: 'Events sent to live stream subscribers (one per subscriber)', registers: [this.registry] });
  readonly streamDisconnects = new Counter({ name: 'chatbridge_stream_disconnects_total', help: 'Live stream subscribers the bridge disconnected, by reason (slow_consumer)', labelNames: ['reason'], registers: [this.registry] });
  readonly kafkaCommands = new Counter({ name: 'chatbridge_kafka_commands_total', help: 'Records of the Kafka commands topic, by outcome: accepted, duplicate (commandId known), invalid (dead-lettered), retried (refused for now, offered again), rerouted (on another partition than its channel\'s, written again to it)', labelNames: ['outcome'], registers: [this.registry] });
  /** Inputs refused at a limit or a fault boundary (frame too large or too deep, event too large, a sink or handler that threw, …), by where and why. */
  readonly refused = new Counter({ name: 'chatbridge_refused_total', help: 'Items refused at an input limit or isolated at a fault boundary, by where (frame, event, sink, consumer, stream, inbound, api, …) and reason', labelNames: ['origin', 'reason'], registers: [this.registry] });
  readonly kafkaRecordsRead = new Counter({ name: 'chatbridge_kafka_records_read_total', help: 'Records the bridge\'s own Kafka readers finished (handled or dead-lettered), by reader (command ledger follower; state topic follower, with cluster.enabled; command consumer; webhook consumer, all endpoints together)', labelNames: ['reader'], registers: [this.registry] });
  readonly deadLetters = new Counter({ name: 'chatbridge_dead_letters_total', help: 'Items dead-lettered, by where and why', labelNames: ['target', 'reason'], registers: [this.registry] });
  readonly commandsAccepted = new Counter({ name: 'chatbridge_commands_accepted_total', help: 'New commands accepted, by door, provider and type', labelNames: ['door', 'provider', 'type'], registers: [this.registry] });
  readonly commandsRefused = new Counter({ name: 'chatbridge_commands_refused_total', help: 'Commands refused at a door (invalid, unknown channel, conflict, unsupported, busy, rate limited …), by door and code', labelNames: ['door', 'code'], registers: [this.registry] });
  readonly commandsDuplicate = new Counter({ name: 'chatbridge_commands_duplicate_total', help: 'Repeats of a known commandId answered from the ledger (not sent again), by door', labelNames: ['door'], registers: [this.registry] });
  readonly commandsFinished = new Counter({ name: 'chatbridge_commands_finished_total', help: 'Commands that reached an end state, by channel, type, outcome (sent, failed) and code (the failure\'s error code; none when sent)', labelNames: ['channel', 'type', 'outcome', 'code'], registers: [this.registry] });
  /** Deprecated: chatbridge_commands_finished_total replaces it; removed in the release after next. */
  readonly commandsEnded = new Counter({ name: 'chatbridge_commands_total', help: 'Deprecated, removed in the next release: use chatbridge_commands_finished_total. Commands that reached an end state, by provider, type and status (sent, failed)', labelNames: ['provider', 'type', 'status'], registers: [this.registry] });
  readonly commandAttempts = new Counter({ name: 'chatbridge_command_attempts_total', help: 'Upstream attempts of commands (retries included), by provider and type', labelNames: ['provider', 'type'], registers: [this.registry] });
  readonly commandLedgerUnwritten = new Counter({ name: 'chatbridge_command_ledger_unwritten_total', help: 'Command state changes the durable ledger (Kafka) did not take, by the state: sending (nothing sent, tried again), sent/failed (not reported yet, recorded again), accepted', labelNames: ['status'], registers: [this.registry] });
  readonly commandsPending = new Gauge({ name: 'chatbridge_commands_pending', help: 'Unfinished commands (queued, held while reconnecting, retrying, awaiting an echo), by channel', labelNames: ['channel'], registers: [this.registry] });
  readonly commandTimeToSent = new Histogram({
    name: 'chatbridge_command_sent_duration_seconds',
    help: 'From acceptance to the upstream confirming a command, by provider and type',
    labelNames: ['provider', 'type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Where `chatbridge_channel_state` reads the channels' states (the ChannelRuntime's snapshots). */
  readChannelStatesFrom(states: ChannelStates): void {
    this.channelStates = states;
  }

  /** Counts the events one sink acknowledged, per channel and type (`chatbridge_events_out_total{sink}`). */
  eventsOutOf(sink: string): (channel: string, type: string) => HotCount {
    let series = this.eventsOutBySink.get(sink);
    if (!series) this.eventsOutBySink.set(sink, (series = this.hotSeries<'sink' | 'channel' | 'type'>(this.eventsOut, { sink }, 'channel', 'type')));
    return series;
  }

  /**
   * The series of a counter counted on a hot path, by one or two label values: `series(a, b)` is the HotCount of
   * `fixed` plus `{[first]: a, [second]: b}`, made once and then found in two maps, so counting builds nothing. The
   * counter must flush its hot series when read (`collect: () => this.flushHot(counter)`).
   */
  hotSeries<T extends string>(counter: Counter<T>, fixed: LabelValues<T>, first: T, second?: T): (a: string, b?: string) => HotCount {
    const made = new Map<string, Map<string, HotCount>>();
    return (a, b = '') => {
      let byB = made.get(a);
      if (!byB) made.set(a, (byB = new Map()));
      let count = byB.get(b);
      if (!count) byB.set(b, (count = this.hotCount(counter, (second ? { ...fixed, [first]: a, [second]: b } : { ...fixed, [first]: a }) as LabelValues<T>)));
      return count;
    };
  }

  /**
   * The series `labels` of `counter` as a HotCount, for a hot path (the same one for the same labels); the counter
   * must flush its hot series when read (its `collect`).
   */
  hotCount<T extends string>(counter: Counter<T>, labels: LabelValues<T>): HotCount {
    let series = this.hot.get(counter as Counter<string>);
    if (!series) this.hot.set(counter as Counter<string>, (series = new Map()));
    const key = seriesKey(labels);
    let count = series.get(key);
    if (!count) series.set(key, (count = new HotCount(labels)));
    return count;
  }

  /**
   * Where the series `labels` of `gauge` is read at every scrape (a queue's length, an endpoint's held events), rather
   * than set on every event; the gauge must read its series when collected (`collect: () => this.readGauge(gauge)`).
   * A later reader of the same series replaces the earlier one.
   */
  readAtScrape<T extends string>(gauge: Gauge<T>, labels: LabelValues<T>, read: () => number): void {
    const series = this.reads.get(gauge as Gauge<string>) ?? new Map();
    series.set(seriesKey(labels), { labels, read });
    this.reads.set(gauge as Gauge<string>, series);
  }

  private readGauge<T extends string>(gauge: Gauge<T>): void {
    for (const { labels, read } of this.reads.get(gauge as Gauge<string>)?.values() ?? []) gauge.set(labels as LabelValues<T>, read());
  }

  /** Adds what the hot series of `counter` counted since the last read (a `reset()` of the counter does not drop it). */
  private flushHot<T extends string>(counter: Counter<T>): void {
    for (const count of this.hot.get(counter as Counter<string>)?.values() ?? []) {
      const added = count.pending;
      if (added === 0) continue;
      count.pending = 0;
      counter.inc(count.labels as LabelValues<T>, added);
    }
  }

  private collectChannelStates(): void {
    if (!this.channelStates) return;
    this.channelState.reset();
    for (const { channel, state } of this.channelStates()) {
      for (const s of CHANNEL_STATES) this.channelState.set({ channel, state: s }, s === state ? 1 : 0);
    }
  }
}

/** One key per series, whatever order its labels were written in. */
function seriesKey(labels: LabelValues<string>): string {
  return JSON.stringify(Object.keys(labels).sort().map((name) => [name, labels[name]]));
}
