import { randomUUID } from 'node:crypto';
import { EVOLUTION_CONFIG_EVENTS, upperHex } from './zapthinker.protocol';

/** Static description of one simulated instance. */
export interface ZapThinkerInstanceConfig {
  /** Instance token (accepted as `apikey` on the socket handshake and on this instance's REST routes). */
  token: string;
  /** The instance's own WhatsApp id, used as envelope `sender` (default `5511900000000@s.whatsapp.net`). */
  wuid?: string;
  /** Profile name reported in `connection.update` (default `ZapThinker Sim`). */
  profileName?: string;
  /** Evolution instance uuid put in `data.instanceId` (default: a random uuid). */
  instanceId?: string;
}

/** Per-instance websocket configuration stored by `POST /websocket/set`. */
export interface WebsocketConfigRecord {
  /** Row id. */
  id: string;
  /** Enabled flag. */
  enabled: boolean;
  /** UPPER_SNAKE config event names. */
  events: string[];
  /** ISO creation time. */
  createdAt: string;
  /** ISO update time. */
  updatedAt: string;
  /** Evolution instance uuid. */
  instanceId: string;
}

/** One instance as the simulator knows it: configured, or synthesised on first use. */
export interface EvolutionInstance {
  name: string;
  token: string;
  wuid: string;
  profileName: string;
  instanceId: string;
}

const DEFAULT_WUID = '5511900000000@s.whatsapp.net';

/**
 * The simulated server's instances: their identities and tokens, and the websocket configuration each stored with
 * `POST /websocket/set` (which events its namespace gets). Survives a `restart()`, as Evolution's database does.
 */
export class EvolutionInstances {
  private readonly configured = new Map<string, EvolutionInstance>();
  private readonly synthetic = new Map<string, EvolutionInstance>();
  private readonly websocketConfigs = new Map<string, WebsocketConfigRecord>();

  constructor(
    private readonly globalApiKey: string,
    /** Only configured instances exist (REST answers 404 for others); else any name is accepted with the global key. */
    readonly strict: boolean,
    /** Emit only to instances that enabled their websocket (`requireWebsocketSet`). */
    private readonly requireWebsocketSet: boolean,
  ) {}

  /** Registers (or replaces) an instance and its token. */
  add(name: string, cfg: ZapThinkerInstanceConfig): void {
    this.configured.set(name, {
      name,
      token: cfg.token,
      wuid: cfg.wuid ?? DEFAULT_WUID,
      profileName: cfg.profileName ?? 'ZapThinker Sim',
      instanceId: cfg.instanceId ?? this.synthetic.get(name)?.instanceId ?? randomUUID(),
    });
  }

  /** A configured instance, undefined for any other name. */
  find(name: string): EvolutionInstance | undefined {
    return this.configured.get(name);
  }

  /** The instance's identity; one without a configured token gets a stable synthesised one on first use. */
  resolve(instance: string): EvolutionInstance {
    let inst = this.configured.get(instance) ?? this.synthetic.get(instance);
    if (!inst) {
      inst = { name: instance, token: '', wuid: DEFAULT_WUID, profileName: 'ZapThinker Sim', instanceId: randomUUID() };
      this.synthetic.set(instance, inst);
    }
    return inst;
  }

  /** True for the global key or any instance's token (the socket handshake's check). */
  isKnownToken(key: string): boolean {
    if (key === this.globalApiKey) return true;
    for (const inst of this.configured.values()) if (inst.token === key) return true;
    return false;
  }

  /** Evolution's REST auth guard: the global key, or this instance's own token. */
  authorises(instance: string, key: string | undefined): boolean {
    const inst = this.configured.get(instance);
    return key !== undefined && (key === this.globalApiKey || (inst !== undefined && inst.token !== '' && inst.token === key));
  }

  /** Stored websocket config of an instance, if set. */
  websocketConfig(instance: string): WebsocketConfigRecord | undefined {
    return this.websocketConfigs.get(instance);
  }

  /** Stores `POST /websocket/set`'s `websocket` block; returns the record, or the validation errors. */
  setWebsocket(instance: string, enabled: boolean, rawEvents: unknown[]): WebsocketConfigRecord | { errors: string[] } {
    const bad = rawEvents.filter((e) => typeof e !== 'string' || !EVOLUTION_CONFIG_EVENTS.includes(e));
    if (bad.length > 0) return { errors: bad.map((e) => `instance.websocket.events is not one of enum values: ${String(e)}`) };
    const events = enabled ? (rawEvents.length > 0 ? rawEvents.map(String) : [...EVOLUTION_CONFIG_EVENTS]) : [];
    const now = new Date().toISOString();
    const prev = this.websocketConfigs.get(instance);
    const record: WebsocketConfigRecord = {
      id: prev?.id ?? `cl${upperHex(11).toLowerCase()}`,
      enabled,
      events,
      createdAt: prev?.createdAt ?? now,
      updatedAt: now,
      instanceId: this.resolve(instance).instanceId,
    };
    this.websocketConfigs.set(instance, record);
    return record;
  }

  /** True when `event` goes to the instance's namespace under its websocket config. */
  socketWants(instance: string, event: string): boolean {
    const cfg = this.websocketConfigs.get(instance);
    if (!cfg) return !this.requireWebsocketSet;
    if (!cfg.enabled) return false;
    return cfg.events.includes(event.replace(/[.-]/g, '_').toUpperCase());
  }
}
