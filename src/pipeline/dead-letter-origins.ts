/**
 * The `origin` of dead letters the bridge writes for itself; a webhook endpoint's are its id. Replay and the dead-letter
 * listing pick an endpoint's dead letters by `origin === id`, so the config refuses these as webhook ids: an endpoint
 * named `kafka` would otherwise replay, to its URL, what the Kafka sink spilled.
 * Sinks (by name): `kafka`, `stdout`, `webhooks`, `stream`; frame intake: `intake`, `limits`, `inbound`; the Kafka
 * command door: `kafka-commands`. (Consumer origins such as `scan:<topic>` cannot be ids: ids have no `:`.)
 */
export const BRIDGE_DEAD_LETTER_ORIGINS: ReadonlySet<string> = new Set(['kafka', 'stdout', 'webhooks', 'stream', 'intake', 'limits', 'inbound', 'kafka-commands']);
