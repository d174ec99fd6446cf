/**
 * Evolution's per-instance webhook sink (docs/providers.md#zapthinker), as the ZapThinker simulator's second delivery path:
 * `POST /webhook/set/{instance}` `{"webhook": {"enabled", "url", "headers", "byEvents", "events"}}` stores the
 * target; every event that passes its filter is then POSTed there as the socket envelope plus `destination`,
 * with the configured headers, a real HTTP request over loopback. `byEvents` appends `/<event-kebab>`.
 * Unlike Evolution (in-memory retries for minutes), each event gets one attempt; every attempt is recorded.
 */

/** Stored webhook configuration of one instance. */
export interface WebhookConfigRecord {
  enabled: boolean;
  url: string;
  headers: Record<string, string>;
  byEvents: boolean;
  /** UPPER_SNAKE config names; empty = every event. */
  events: string[];
}

/** One POST the simulator made. */
export interface WebhookDelivery {
  instance: string;
  event: string;
  url: string;
  /** The body sent (the envelope plus `destination`). */
  body: Record<string, unknown>;
  /** HTTP status, absent when the request failed. */
  status?: number;
  error?: string;
  at: number;
}

/** Per-instance webhook targets and the POSTs made to them. */
export class EvolutionWebhooks {
  /** Every POST made, in the order they finished. */
  readonly deliveries: WebhookDelivery[] = [];
  private readonly configs = new Map<string, WebhookConfigRecord>();
  private readonly inFlight = new Set<Promise<void>>();

  /** Stores (or replaces) an instance's webhook; returns a validation error text or undefined. */
  set(instance: string, body: unknown, validEvents: readonly string[]): string | undefined {
    const wh = isRecord(body) && isRecord(body.webhook) ? body.webhook : undefined;
    if (!wh || typeof wh.enabled !== 'boolean') return 'instance.webhook requires property "enabled"';
    if (wh.enabled && (typeof wh.url !== 'string' || !/^https?:\/\//.test(wh.url))) return 'instance.webhook.url is not a valid url';
    const events = Array.isArray(wh.events) ? wh.events.map(String) : [];
    const bad = events.filter((e) => !validEvents.includes(e));
    if (bad.length) return `instance.webhook.events is not one of enum values: ${bad.join(', ')}`;
    const headers = isRecord(wh.headers) ? Object.fromEntries(Object.entries(wh.headers).map(([k, v]) => [k, String(v)])) : {};
    this.configs.set(instance, { enabled: wh.enabled, url: typeof wh.url === 'string' ? wh.url : '', headers, byEvents: wh.byEvents === true, events });
    return undefined;
  }

  /** The stored configuration of an instance. */
  find(instance: string): WebhookConfigRecord | undefined {
    return this.configs.get(instance);
  }

  /** True when an event of this instance goes to its webhook. */
  wants(instance: string, event: string): boolean {
    const cfg = this.configs.get(instance);
    if (!cfg?.enabled) return false;
    return cfg.events.length === 0 || cfg.events.includes(event.replace(/[.-]/g, '_').toUpperCase());
  }

  /** POSTs one envelope (fire and forget, as Evolution does); `idle()` waits for it. */
  post(instance: string, event: string, envelope: object): void {
    const cfg = this.configs.get(instance);
    if (!cfg) return;
    const url = cfg.byEvents ? `${cfg.url.replace(/\/+$/, '')}/${event.replace(/[._]/g, '-').toLowerCase()}` : cfg.url;
    const body = { ...envelope, destination: url };
    const done = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...cfg.headers }, body: JSON.stringify(body) })
      .then(async (res) => {
        await res.arrayBuffer();
        this.deliveries.push({ instance, event, url, body, status: res.status, at: Date.now() });
      })
      .catch((err: unknown) => {
        this.deliveries.push({ instance, event, url, body, error: err instanceof Error ? err.message : String(err), at: Date.now() });
      })
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }

  /** Resolves when every POST started so far has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
