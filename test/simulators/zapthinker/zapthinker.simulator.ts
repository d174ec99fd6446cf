/**
 * Local simulator of the ZapThinker API (a rebrand of Evolution API v2.3.6) socket.io server and the
 * REST endpoints the bridge uses. It reproduces Evolution's websocket.controller.ts behaviour:
 * auth at the Engine.IO handshake (`allowRequest`), lazily created per-instance namespaces,
 * the `sendDataWebhook` envelope (including the mislabelled `date_time`), no connection state recovery.
 * See docs/providers.md#zapthinker. Its parts: the wire formats (zapthinker.protocol.ts), the instances and their
 * websocket configs (zapthinker.instances.ts), the event data builders (zapthinker.payloads.ts), the REST routes
 * (zapthinker.rest.ts) and the webhook sink (zapthinker.webhook.ts); this file is the server and the tests' handle.
 */
import { EvolutionInstances, type WebsocketConfigRecord, type ZapThinkerInstanceConfig } from './zapthinker.instances';
import { EvolutionPayloads, type ConnectionUpdateOptions, type ImageMessageOptions, type MessagesUpdateOptions, type MessageUpsertOptions } from './zapthinker.payloads';
import {
  upperHex, ZAPTHINKER_UNKNOWN_EVENT,
  type EvolutionConnectionUpdateData, type EvolutionEnvelope, type EvolutionMessageData, type EvolutionMessageKey, type EvolutionMessageUpdateData,
  type EvolutionPresenceData, type EvolutionQrcodeData,
} from './zapthinker.protocol';
import { EvolutionRest, type RecordedRequest } from './zapthinker.rest';
import { EvolutionSocketServer, type RecordedHandshake } from './zapthinker.server';
import { EvolutionWebhooks, type WebhookConfigRecord, type WebhookDelivery } from './zapthinker.webhook';

export type { WebhookConfigRecord, WebhookDelivery } from './zapthinker.webhook';
export type { WebsocketConfigRecord, ZapThinkerInstanceConfig } from './zapthinker.instances';
export type { ConnectionUpdateOptions, ImageMessageOptions, MessagesUpdateOptions, MessageUpsertOptions } from './zapthinker.payloads';
export type { RecordedRequest } from './zapthinker.rest';
export type { RecordedHandshake } from './zapthinker.server';
export * from './zapthinker.protocol';

/** Options of the simulator. */
export interface ZapThinkerSimulatorOptions {
  /** TCP port; 0 (default) picks a random free port, kept across `restart()`. */
  port?: number;
  /** Bind address (default `127.0.0.1`). */
  host?: string;
  /** Global API key (`AUTHENTICATION_API_KEY`), accepted everywhere (default `zt-global-key`). */
  globalApiKey?: string;
  /** Known instances by name. When omitted, any instance name is accepted on REST with the global key. */
  instances?: Record<string, ZapThinkerInstanceConfig>;
  /** Envelope `server_url` (`SERVER_URL`); default is the simulator's own URL. */
  serverUrl?: string;
  /** Minutes as returned by `Date#getTimezoneOffset()` of the simulated server (default 180 = UTC-3, Sao Paulo). */
  timezoneOffsetMinutes?: number;
  /** `AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES`: put the instance token into envelope `apikey` (default false → null). */
  exposeApiKey?: boolean;
  /** Engine.IO pingInterval in ms (socket.io default 25000). */
  pingIntervalMs?: number;
  /** Engine.IO pingTimeout in ms (socket.io default 20000). */
  pingTimeoutMs?: number;
  /** socket.io connectTimeout in ms (socket.io default 45000). */
  connectTimeoutMs?: number;
  /** `WEBSOCKET_ALLOWED_HOSTS`: remote addresses that skip the key check (default none, as a remote hosted service). */
  allowedHosts?: string[];
  /** Emit only to instances that ran `POST /websocket/set` with enabled=true, as real Evolution (default false). */
  requireWebsocketSet?: boolean;
  /** Delay between the sendText response and the `send.message` event, in ms (default 5). */
  sendEchoDelayMs?: number;
  /** Numbers (digits or JIDs) reported as "not on WhatsApp" by sendText. */
  notOnWhatsApp?: string[];
}

/** Kinds of broken frames `emitMalformed` can produce (`unknown-event` sends ZAPTHINKER_UNKNOWN_EVENT). */
export type MalformedKind = 'null-data' | 'no-key' | 'string-payload' | 'unknown-event';

const DEFAULT_GLOBAL_KEY = 'zt-global-key';

/** Faithful local stand-in for the ZapThinker (Evolution API v2.3.6) socket.io server and REST send API. */
export class ZapThinkerSimulator {
  private readonly opts: ZapThinkerSimulatorOptions;
  private readonly host: string;
  private readonly globalApiKey: string;
  private readonly instances: EvolutionInstances;
  private readonly payloads: EvolutionPayloads;
  private readonly webhooks = new EvolutionWebhooks();
  private readonly rest: EvolutionRest;
  private readonly server: EvolutionSocketServer;

  /** Creates a stopped simulator; call `start()`. */
  constructor(options: ZapThinkerSimulatorOptions = {}) {
    this.opts = options;
    this.host = options.host ?? '127.0.0.1';
    this.globalApiKey = options.globalApiKey ?? DEFAULT_GLOBAL_KEY;
    this.instances = new EvolutionInstances(this.globalApiKey, options.instances !== undefined, options.requireWebsocketSet ?? false);
    this.payloads = new EvolutionPayloads(this.instances);
    this.rest = new EvolutionRest({
      instances: this.instances,
      webhooks: this.webhooks,
      payloads: this.payloads,
      emit: (instance, event, data) => void this.emit(instance, event, data),
      running: () => this.server.running,
      touch: (instance) => this.touch(instance),
      sendEchoDelayMs: options.sendEchoDelayMs ?? 5,
    });
    this.server = new EvolutionSocketServer({ ...options, host: this.host }, (key) => this.instances.isKnownToken(key), (req, res) => this.rest.handle(req, res));
    for (const [name, cfg] of Object.entries(options.instances ?? {})) this.addInstance(name, cfg);
    for (const n of options.notOnWhatsApp ?? []) this.markNotOnWhatsApp(n);
  }

  /** Every REST request received (socket.io traffic excluded), oldest first. */
  get requests(): RecordedRequest[] {
    return this.rest.requests;
  }

  /** Every socket.io handshake evaluated by allowRequest, oldest first. */
  get handshakes(): RecordedHandshake[] {
    return this.server.handshakes;
  }

  /** Base URL `http://127.0.0.1:<port>` (valid after `start()`). */
  get url(): string {
    return `http://${this.host}:${this.server.port}`;
  }

  /** Port the server is (or was last) bound to. */
  get port(): number {
    return this.server.port;
  }

  /** The global API key. */
  get globalKey(): string {
    return this.globalApiKey;
  }

  /** True while listening. */
  get running(): boolean {
    return this.server.running;
  }

  /** Registers (or replaces) an instance and its token. */
  addInstance(name: string, cfg: ZapThinkerInstanceConfig): void {
    this.instances.add(name, cfg);
  }

  /** Makes sendText answer 400 "not on WhatsApp" for this number (digits or JID). */
  markNotOnWhatsApp(number: string): void {
    this.rest.markNotOnWhatsApp(number);
  }

  /** Starts the http + socket.io server (port from options, random when 0). */
  async start(): Promise<void> {
    if (this.server.running) return;
    await this.server.listen(this.server.port);
  }

  /** Stops everything; pending hung requests are destroyed and scheduled echoes dropped. */
  async stop(): Promise<void> {
    this.rest.cancelEchoes();
    this.rest.dropHung();
    await this.server.close();
  }

  /**
   * Simulates a process restart: closes io and http, listens again on the same port with a fresh io
   * (all namespaces gone → lazy again). REST state (configs, instances, recorded requests) is kept.
   */
  async restart(): Promise<void> {
    this.rest.dropHung();
    await this.server.close();
    await this.server.listen(this.server.port);
  }

  /**
   * When on, every handshake is refused with HTTP 400 and `reason` as its body: `Invalid global token` (the key
   * matches no instance, as while a restarted server has not loaded its instances yet) or `Authentication error`
   * (the token lookup threw, e.g. the database is not up).
   */
  rejectAuth(on: boolean, reason: 'Invalid global token' | 'Authentication error' = 'Invalid global token'): void {
    this.server.authRejected = on ? reason : undefined;
  }

  /** The next `n` sendText calls answer `status` immediately, without sending. */
  failNextSends(n: number, status: number): void {
    this.rest.failNextSends(n, status);
  }

  /** The next `n` sendText calls send (emit send.message) but never answer. */
  hangNextSends(n: number): void {
    this.rest.hangNextSends(n);
  }

  /** The next `n` sendText calls are read and never answered, and nothing is sent (no send.message). */
  stallNextSends(n: number): void {
    this.rest.stallNextSends(n);
  }

  /** The next `n` sendText calls send (emit send.message) and answer 201 with a body of `bytes` bytes. */
  oversizeNextSends(n: number, bytes: number): void {
    this.rest.oversizeNextSends(n, bytes);
  }

  /** Bytes each oversized answer wrote before its client closed the connection, oldest first. */
  get oversizedWritten(): readonly number[] {
    return this.rest.oversizedWritten;
  }

  /** Creates the namespace `/<instance>` without emitting, as the instance's first event would. */
  touch(instance: string): void {
    this.server.touch(instance);
  }

  /** True if namespace `/<instance>` exists in the current io (since the last (re)start). */
  hasNamespace(instance: string): boolean {
    return this.server.hasNamespace(instance);
  }

  /** Stored websocket config of an instance, if set. */
  websocketConfig(instance: string): WebsocketConfigRecord | undefined {
    return this.instances.websocketConfig(instance);
  }

  /**
   * Emits `event` with an Evolution envelope to namespace `/<instance>` (creating it lazily) and, when the
   * instance has an enabled webhook (`POST /webhook/set`), POSTs it there too. Applies each sink's event filter.
   * Returns the envelope, or undefined when both filters dropped it.
   */
  emit<T>(instance: string, event: string, data: T): EvolutionEnvelope<T> | undefined {
    const toSocket = this.instances.socketWants(instance, event);
    const toWebhook = this.webhooks.wants(instance, event);
    if (!toSocket && !toWebhook) return undefined;
    const envelope = this.envelope(instance, event, data);
    if (toSocket) this.server.touch(instance).emit(event, envelope);
    if (toWebhook) this.webhooks.post(instance, event, envelope);
    return envelope;
  }

  /** Writes a raw socket.io packet to `/<instance>` (see EvolutionSocketServer.emitRawText). */
  emitRawText(instance: string, event: string, payloadJson: string): void {
    this.server.emitRawText(instance, event, payloadJson);
  }

  /** Stored webhook config of an instance, if set. */
  webhookConfig(instance: string): WebhookConfigRecord | undefined {
    return this.webhooks.find(instance);
  }

  /** Every webhook POST made so far (status or error each). */
  get webhookDeliveries(): readonly WebhookDelivery[] {
    return this.webhooks.deliveries;
  }

  /** Resolves when every webhook POST started so far has been answered (or failed). */
  webhooksIdle(): Promise<void> {
    return this.webhooks.idle();
  }

  /** Emits `messages.upsert` built by `messageUpsert` and returns its data. */
  sendMessage(instance: string, opts: Omit<MessageUpsertOptions, 'instance'>): EvolutionMessageData {
    const data = this.messageUpsert({ ...opts, instance });
    this.emit(instance, 'messages.upsert', data);
    return data;
  }

  /**
   * Emits `count` messages.upsert over `conversations` chats (round robin, text `msg <conv>#<seq>`),
   * yielding to the event loop every `perTick` messages; returns the data in emission order.
   */
  async burst(
    instance: string,
    count: number,
    opts: { conversations?: number; perTick?: number } = {},
  ): Promise<EvolutionMessageData[]> {
    const conversations = Math.max(1, opts.conversations ?? 1);
    const perTick = Math.max(1, opts.perTick ?? 500);
    const out: EvolutionMessageData[] = [];
    const seqByConv = new Array<number>(conversations).fill(0);
    for (let i = 0; i < count; i++) {
      const conv = i % conversations;
      const seq = ++seqByConv[conv];
      const remoteJid = `55119${String(10000000 + conv).padStart(8, '0')}@s.whatsapp.net`;
      out.push(this.sendMessage(instance, { remoteJid, text: `msg ${conv}#${seq}`, pushName: `Contact ${conv}` }));
      if ((i + 1) % perTick === 0 && i + 1 < count) await new Promise<void>((r) => setImmediate(r));
    }
    return out;
  }

  /** Emits a broken frame of the given kind (bypassing the event filter) and returns what was sent. */
  emitMalformed(instance: string, kind: MalformedKind): { event: string; payload: unknown } {
    const nsp = this.server.touch(instance);
    let event = 'messages.upsert';
    let payload: unknown;
    switch (kind) {
      case 'null-data':
        payload = this.envelope(instance, event, null);
        break;
      case 'no-key': {
        const { key: _key, ...rest } = this.payloads.messageUpsert({ instance, remoteJid: '5511999990000', text: 'no key' });
        payload = this.envelope(instance, event, rest);
        break;
      }
      case 'string-payload':
        payload = 'this is not an envelope';
        break;
      case 'unknown-event':
        event = ZAPTHINKER_UNKNOWN_EVENT;
        payload = this.envelope(instance, event, { id: '5511999990000@s.whatsapp.net', archived: true });
        break;
    }
    nsp.emit(event, payload);
    return { event, payload };
  }

  /** Drops client connections of one instance, or of all (see EvolutionSocketServer.dropConnections); returns how many. */
  dropConnections(instance?: string, mode: 'transport' | 'server-disconnect' = 'transport'): number {
    return this.server.dropConnections(instance, mode);
  }

  /** Number of sockets connected to `/<instance>` (0 when the namespace does not exist). */
  connectedClients(instance: string): number {
    return this.server.connectedClients(instance);
  }

  /** Resolves once at least `n` clients are connected to `/<instance>`; rejects after `timeoutMs`. */
  waitForClients(instance: string, n: number, timeoutMs = 5000): Promise<void> {
    return this.server.waitForClients(instance, n, timeoutMs);
  }

  // ---------------------------------------------------------------- payload builders (zapthinker.payloads.ts)

  /** Builds `messages.upsert` data as Evolution's prepareMessage does. */
  messageUpsert(opts: MessageUpsertOptions): EvolutionMessageData {
    return this.payloads.messageUpsert(opts);
  }

  /** Builds `messages.upsert` data for an image message. */
  imageMessage(opts: ImageMessageOptions): EvolutionMessageData {
    return this.payloads.imageMessage(opts);
  }

  /** Builds `messages.update` data (acks / status changes). */
  messagesUpdate(opts: MessagesUpdateOptions): EvolutionMessageUpdateData {
    return this.payloads.messagesUpdate(opts);
  }

  /** Builds `messages.delete` data (the Baileys key of the revoked message). */
  messagesDelete(opts: Parameters<EvolutionPayloads['messagesDelete']>[0]): EvolutionMessageKey {
    return this.payloads.messagesDelete(opts);
  }

  /** Builds `connection.update` data. */
  connectionUpdate(opts: ConnectionUpdateOptions): EvolutionConnectionUpdateData {
    return this.payloads.connectionUpdate(opts);
  }

  /** Builds `qrcode.updated` data. */
  qrcodeUpdated(opts: { instance: string; pairingCode?: string | null }): EvolutionQrcodeData {
    return this.payloads.qrcodeUpdated(opts);
  }

  /** Builds `presence.update` data (default: the contact is composing). */
  presenceUpdate(opts: Parameters<EvolutionPayloads['presenceUpdate']>[0]): EvolutionPresenceData {
    return this.payloads.presenceUpdate(opts);
  }

  /** Generates an iOS-style WhatsApp message id ('3A' + 18 uppercase hex). */
  static newIosMessageId(): string {
    return `3A${upperHex(9)}`;
  }

  // ---------------------------------------------------------------- server

  private envelope<T>(instance: string, event: string, data: T): EvolutionEnvelope<T> {
    const inst = this.instances.resolve(instance);
    const tzOffsetMs = (this.opts.timezoneOffsetMinutes ?? 180) * 60_000;
    return {
      event,
      instance,
      data,
      server_url: this.opts.serverUrl ?? this.url,
      date_time: new Date(Date.now() - tzOffsetMs).toISOString(),
      sender: inst.wuid,
      apikey: this.opts.exposeApiKey ? inst.token || 'Apikey not found' : null,
    };
  }
}
