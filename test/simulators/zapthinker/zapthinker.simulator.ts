/**
 * Local simulator of the ZapThinker API (a rebrand of Evolution API v2.3.6) socket.io server and the
 * REST endpoints the bridge uses. It reproduces Evolution's websocket.controller.ts behaviour:
 * auth at the Engine.IO handshake (`allowRequest`), lazily created per-instance namespaces,
 * the `sendDataWebhook` envelope (including the mislabelled `date_time`), no connection state recovery.
 * See docs/providers.md#zapthinker.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server as HttpServer, ServerResponse, STATUS_CODES } from 'node:http';
import { AddressInfo } from 'node:net';
import { Namespace, Server as IoServer } from 'socket.io';
import { EvolutionWebhooks, type WebhookConfigRecord, type WebhookDelivery } from './zapthinker.webhook';

export type { WebhookConfigRecord, WebhookDelivery } from './zapthinker.webhook';

/** Message status strings produced by Evolution's utils/renderStatus.ts. */
export type EvolutionMessageStatus = 'ERROR' | 'PENDING' | 'SERVER_ACK' | 'DELIVERY_ACK' | 'READ' | 'PLAYED';

/** Device guessed from the message id (Baileys `getDevice`). */
export type EvolutionMessageSource = 'ios' | 'web' | 'android' | 'desktop' | 'unknown';

/** Connection states reported in `connection.update`. */
export type EvolutionConnectionState = 'open' | 'connecting' | 'close' | 'refused';

/** Kinds of broken frames `emitMalformed` can produce. */
export type MalformedKind = 'null-data' | 'no-key' | 'string-payload' | 'unknown-event';

/** Event name used by `emitMalformed(instance, 'unknown-event')`; it is not in Evolution's `Events` enum. */
export const ZAPTHINKER_UNKNOWN_EVENT = 'chats.archived';

/** Socket event names (dotted form, Evolution `enum Events`). */
export const EVOLUTION_SOCKET_EVENTS: readonly string[] = [
  'application.startup',
  'instance.create',
  'instance.delete',
  'qrcode.updated',
  'connection.update',
  'status.instance',
  'messages.set',
  'messages.upsert',
  'messages.edited',
  'messages.update',
  'messages.delete',
  'send.message',
  'send.message.update',
  'contacts.set',
  'contacts.upsert',
  'contacts.update',
  'presence.update',
  'chats.set',
  'chats.update',
  'chats.upsert',
  'chats.delete',
  'groups.upsert',
  'groups.update',
  'group-participants.update',
  'call',
  'typebot.start',
  'typebot.change-status',
  'labels.edit',
  'labels.association',
  'creds.update',
  'messaging-history.set',
  'remove.instance',
  'logout.instance',
];

/** Config names accepted in `events` arrays (Evolution `EventController.events`; note GROUP_UPDATE, not GROUPS_UPDATE). */
export const EVOLUTION_CONFIG_EVENTS: readonly string[] = [
  'APPLICATION_STARTUP',
  'QRCODE_UPDATED',
  'MESSAGES_SET',
  'MESSAGES_UPSERT',
  'MESSAGES_EDITED',
  'MESSAGES_UPDATE',
  'MESSAGES_DELETE',
  'SEND_MESSAGE',
  'SEND_MESSAGE_UPDATE',
  'CONTACTS_SET',
  'CONTACTS_UPSERT',
  'CONTACTS_UPDATE',
  'PRESENCE_UPDATE',
  'CHATS_SET',
  'CHATS_UPSERT',
  'CHATS_UPDATE',
  'CHATS_DELETE',
  'GROUPS_UPSERT',
  'GROUP_UPDATE',
  'GROUP_PARTICIPANTS_UPDATE',
  'CONNECTION_UPDATE',
  'LABELS_EDIT',
  'LABELS_ASSOCIATION',
  'CALL',
  'TYPEBOT_START',
  'TYPEBOT_CHANGE_STATUS',
  'REMOVE_INSTANCE',
  'LOGOUT_INSTANCE',
  'INSTANCE_CREATE',
  'INSTANCE_DELETE',
  'STATUS_INSTANCE',
];

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

/** Evolution websocket envelope (ChannelStartupService.sendDataWebhook + WebsocketController.emit). */
export interface EvolutionEnvelope<T = unknown> {
  /** Dotted event name, e.g. `messages.upsert`. */
  event: string;
  /** Instance name. */
  instance: string;
  /** Event-specific payload. */
  data: T;
  /** `SERVER_URL`. */
  server_url: string;
  /** Local wall clock mislabelled as UTC (`Z`). */
  date_time: string;
  /** The instance's own WID. */
  sender: string;
  /** Instance token when exposed, else null. */
  apikey: string | null;
}

/** Baileys message key. */
export interface EvolutionMessageKey {
  /** Chat JID. */
  remoteJid: string;
  /** True when the instance itself sent the message. */
  fromMe: boolean;
  /** WhatsApp message id. */
  id: string;
  /** Sender inside a group. */
  participant?: string;
}

/** Baileys image message content (subset that Evolution forwards). */
export interface EvolutionImageMessage {
  /** Encrypted media URL on mmg.whatsapp.net. */
  url: string;
  /** MIME type. */
  mimetype: string;
  /** Optional caption. */
  caption?: string;
  /** Base64 sha256 of the plaintext file. */
  fileSha256: string;
  /** File length in bytes (Long serialised as string). */
  fileLength: string;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
  /** Base64 media key. */
  mediaKey: string;
  /** Base64 sha256 of the encrypted file. */
  fileEncSha256: string;
  /** Direct path on the CDN. */
  directPath: string;
  /** Media key timestamp (unix seconds, as string). */
  mediaKeyTimestamp: string;
}

/** Message content variants the simulator produces. */
export interface EvolutionMessageContent {
  /** Plain text (extendedTextMessage is folded into this by Evolution). */
  conversation?: string;
  /** Text with extras (used in the sendText REST response). */
  extendedTextMessage?: { text: string };
  /** Image. */
  imageMessage?: EvolutionImageMessage;
}

/** `messages.upsert` / `send.message` data (Evolution `prepareMessage`). */
export interface EvolutionMessageData {
  /** Baileys key. */
  key: EvolutionMessageKey;
  /** Contact push name. */
  pushName: string | null;
  /** Rendered status. */
  status: EvolutionMessageStatus;
  /** Message content. */
  message: EvolutionMessageContent;
  /** Context info (quotes, mentions), when present. */
  contextInfo?: Record<string, unknown>;
  /** Content type, e.g. `conversation`, `imageMessage`. */
  messageType: string;
  /** Unix seconds. */
  messageTimestamp: number;
  /** Evolution instance uuid. */
  instanceId: string;
  /** Device guessed from the id. */
  source: EvolutionMessageSource;
}

/** `messages.update` data. */
export interface EvolutionMessageUpdateData {
  /** Evolution's database id of the message (absent when not stored). */
  messageId?: string;
  /** WhatsApp message id. */
  keyId: string;
  /** Chat JID. */
  remoteJid: string;
  /** True for messages sent by the instance. */
  fromMe: boolean;
  /** Group participant or null-ish. */
  participant: string | undefined;
  /** New status. */
  status: EvolutionMessageStatus;
  /** Poll vote updates, when any. */
  pollUpdates?: unknown[];
  /** Evolution instance uuid. */
  instanceId: string;
}

/** `connection.update` data. */
export interface EvolutionConnectionUpdateData {
  /** Instance name. */
  instance: string;
  /** Own WID. */
  wuid: string;
  /** Profile name. */
  profileName: string;
  /** Profile picture URL or null. */
  profilePictureUrl: string | null;
  /** New state. */
  state: EvolutionConnectionState;
  /** Baileys status reason code. */
  statusReason: number;
}

/** `qrcode.updated` data. */
export interface EvolutionQrcodeData {
  /** QR code details. */
  qrcode: { instance: string; pairingCode: string | null; code: string; base64: string };
}

/** `presence.update` data. */
export interface EvolutionPresenceData {
  /** Chat JID. */
  id: string;
  /** Presence by participant JID. */
  presences: Record<string, { lastKnownPresence: 'available' | 'unavailable' | 'composing' | 'recording' | 'paused' }>;
}

/** Options of `messageUpsert` / `sendMessage`. */
export interface MessageUpsertOptions {
  /** Instance name. */
  instance: string;
  /** Chat JID (or digits, turned into a JID). */
  remoteJid: string;
  /** Text content. */
  text: string;
  /** Sent from the phone (default false). */
  fromMe?: boolean;
  /** Message id (default: 32 uppercase hex, an Android-style id). */
  id?: string;
  /** Push name (default `Contact <digits>`; `Você` when fromMe). */
  pushName?: string;
  /** Unix seconds (default now). */
  timestamp?: number;
  /** Group participant. */
  participant?: string;
  /** Status (default DELIVERY_ACK). */
  status?: EvolutionMessageStatus;
  /** Override the device source (default derived from the id, as Baileys getDevice). */
  source?: EvolutionMessageSource;
}

/** Options of `imageMessage`. */
export interface ImageMessageOptions extends Omit<MessageUpsertOptions, 'text'> {
  /** Caption. */
  caption?: string;
  /** Encrypted media URL. */
  url?: string;
  /** MIME type (default image/jpeg). */
  mimetype?: string;
  /** File size in bytes (default 54321). */
  fileLength?: number;
}

/** Options of `messagesUpdate`. */
export interface MessagesUpdateOptions {
  /** Instance name. */
  instance: string;
  /** Chat JID. */
  remoteJid: string;
  /** WhatsApp message id. */
  keyId: string;
  /** New status. */
  status: EvolutionMessageStatus;
  /** True for messages sent by the instance (default true). */
  fromMe?: boolean;
  /** Group participant. */
  participant?: string;
  /** Evolution DB id. */
  messageId?: string;
  /** Poll updates. */
  pollUpdates?: unknown[];
}

/** Options of `connectionUpdate`. */
export interface ConnectionUpdateOptions {
  /** Instance name. */
  instance: string;
  /** New state. */
  state: EvolutionConnectionState;
  /** Status reason (default 200 for open, 401 for close/refused, else 200). */
  statusReason?: number;
}

/** A REST request received by the simulator. */
export interface RecordedRequest {
  /** HTTP method. */
  method: string;
  /** Path including query string. */
  path: string;
  /** Request headers (lower-case names). */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, raw string when not JSON, undefined when empty. */
  body: unknown;
  /** Epoch ms of arrival. */
  receivedAt: number;
}

/** A socket.io handshake seen by `allowRequest`. */
export interface RecordedHandshake {
  /** Request URL (path + query). */
  url: string;
  /** API key found in query or header. */
  apikey: string | undefined;
  /** Whether the handshake was accepted. */
  accepted: boolean;
  /** Rejection message passed to the allowRequest callback. */
  reason?: string;
  /** Epoch ms. */
  at: number;
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

/** sendText REST response (the Baileys WAMessage). */
export interface SendTextResponse {
  /** Message key. */
  key: EvolutionMessageKey;
  /** Sent content. */
  message: { extendedTextMessage: { text: string } };
  /** Unix seconds as string. */
  messageTimestamp: string;
  /** Always PENDING. */
  status: 'PENDING';
}

interface ResolvedInstance {
  name: string;
  token: string;
  wuid: string;
  profileName: string;
  instanceId: string;
}

interface SendFailure {
  status: number;
}

const DEFAULT_GLOBAL_KEY = 'zt-global-key';
const DEFAULT_WUID = '5511900000000@s.whatsapp.net';

function upperHex(bytes: number): string {
  return randomBytes(bytes).toString('hex').toUpperCase();
}

/** Baileys getDevice: guesses the sender device from the message id. */
export function deviceFromMessageId(id: string): EvolutionMessageSource {
  if (/^3A.{18}$/.test(id)) return 'ios';
  if (/^3E.{20}$/.test(id)) return 'web';
  if (/^(.{21}|.{32})$/.test(id)) return 'android';
  if (/^(3F|.{18}$)/.test(id)) return 'desktop';
  return 'unknown';
}

/** Evolution createJid, without the BR/MX ninth-digit rewriting: keeps JIDs, strips formatting from numbers. */
export function toJid(number: string): string {
  if (/@(g\.us|s\.whatsapp\.net|lid|broadcast)/.test(number)) return number;
  let n = number.replace(/[\s+()]/g, '').split(':')[0].split('@')[0];
  if (n.includes('-') && n.length >= 24) return `${n.replace(/[^\d-]/g, '')}@g.us`;
  n = n.replace(/\D/g, '');
  if (n.length >= 18) return `${n}@g.us`;
  return `${n}@s.whatsapp.net`;
}

function evolutionError(status: number, message: unknown): { status: number; error: string; response: { message: unknown } } {
  return { status, error: STATUS_CODES[status] ?? 'Error', response: { message } };
}

/** Faithful local stand-in for the ZapThinker (Evolution API v2.3.6) socket.io server and REST send API. */
export class ZapThinkerSimulator {
  /** Every REST request received (socket.io traffic excluded), oldest first. */
  public readonly requests: RecordedRequest[] = [];
  /** Every socket.io handshake evaluated by allowRequest, oldest first. */
  public readonly handshakes: RecordedHandshake[] = [];

  private readonly opts: ZapThinkerSimulatorOptions;
  private readonly host: string;
  private readonly globalApiKey: string;
  private readonly instances = new Map<string, ResolvedInstance>();
  private readonly synthetic = new Map<string, ResolvedInstance>();
  private readonly strictInstances: boolean;
  private readonly websocketConfigs = new Map<string, WebsocketConfigRecord>();
  private readonly webhooks = new EvolutionWebhooks();
  private readonly notOnWhatsApp = new Set<string>();
  private readonly hungResponses = new Set<ServerResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private http: HttpServer | undefined;
  private io: IoServer | undefined;
  private boundPort: number;
  private authRejected: string | undefined;
  private failures: SendFailure[] = [];
  private hangs = 0;

  /** Creates a stopped simulator; call `start()`. */
  constructor(options: ZapThinkerSimulatorOptions = {}) {
    this.opts = options;
    this.host = options.host ?? '127.0.0.1';
    this.globalApiKey = options.globalApiKey ?? DEFAULT_GLOBAL_KEY;
    this.boundPort = options.port ?? 0;
    this.strictInstances = options.instances !== undefined;
    for (const [name, cfg] of Object.entries(options.instances ?? {})) this.addInstance(name, cfg);
    for (const n of options.notOnWhatsApp ?? []) this.markNotOnWhatsApp(n);
  }

  /** Base URL `http://127.0.0.1:<port>` (valid after `start()`). */
  get url(): string {
    return `http://${this.host}:${this.boundPort}`;
  }

  /** Port the server is (or was last) bound to. */
  get port(): number {
    return this.boundPort;
  }

  /** The global API key. */
  get globalKey(): string {
    return this.globalApiKey;
  }

  /** True while listening. */
  get running(): boolean {
    return this.io !== undefined;
  }

  /** Registers (or replaces) an instance and its token. */
  addInstance(name: string, cfg: ZapThinkerInstanceConfig): void {
    this.instances.set(name, {
      name,
      token: cfg.token,
      wuid: cfg.wuid ?? DEFAULT_WUID,
      profileName: cfg.profileName ?? 'ZapThinker Sim',
      instanceId: cfg.instanceId ?? this.synthetic.get(name)?.instanceId ?? randomUUID(),
    });
  }

  /** Makes sendText answer 400 "not on WhatsApp" for this number (digits or JID). */
  markNotOnWhatsApp(number: string): void {
    this.notOnWhatsApp.add(toJid(number));
  }

  /** Starts the http + socket.io server (port from options, random when 0). */
  async start(): Promise<void> {
    if (this.io) return;
    await this.listen(this.boundPort);
  }

  /** Stops everything; pending hung requests are destroyed and scheduled echoes dropped. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.closeServers();
  }

  /**
   * Simulates a process restart: closes io and http, listens again on the same port with a fresh io
   * (all namespaces gone → lazy again). REST state (configs, instances, recorded requests) is kept.
   */
  async restart(): Promise<void> {
    const port = this.boundPort;
    await this.closeServers();
    await this.listen(port);
  }

  /**
   * When on, every handshake is refused with HTTP 400 and `reason` as its body: `Invalid global token` (the key
   * matches no instance, as while a restarted server has not loaded its instances yet) or `Authentication error`
   * (the token lookup threw, e.g. the database is not up).
   */
  rejectAuth(on: boolean, reason: 'Invalid global token' | 'Authentication error' = 'Invalid global token'): void {
    this.authRejected = on ? reason : undefined;
  }

  /** The next `n` sendText calls answer `status` immediately, without sending. */
  failNextSends(n: number, status: number): void {
    for (let i = 0; i < n; i++) this.failures.push({ status });
  }

  /** The next `n` sendText calls send (emit send.message) but never answer. */
  hangNextSends(n: number): void {
    this.hangs += n;
  }

  /** Creates the namespace `/<instance>` without emitting, as the instance's first event would. */
  touch(instance: string): void {
    this.requireIo().of(`/${instance}`);
  }

  /** True if namespace `/<instance>` exists in the current io (since the last (re)start). */
  hasNamespace(instance: string): boolean {
    return this.io?._nsps.has(`/${instance}`) ?? false;
  }

  /** Stored websocket config of an instance, if set. */
  websocketConfig(instance: string): WebsocketConfigRecord | undefined {
    return this.websocketConfigs.get(instance);
  }

  /**
   * Emits `event` with an Evolution envelope to namespace `/<instance>` (creating it lazily) and, when the
   * instance has an enabled webhook (`POST /webhook/set`), POSTs it there too. Applies each sink's event filter.
   * Returns the envelope, or undefined when both filters dropped it.
   */
  emit<T>(instance: string, event: string, data: T): EvolutionEnvelope<T> | undefined {
    const toSocket = this.passesFilter(instance, event);
    const toWebhook = this.webhooks.wants(instance, event);
    if (!toSocket && !toWebhook) return undefined;
    const envelope = this.envelope(instance, event, data);
    if (toSocket) this.requireIo().of(`/${instance}`).emit(event, envelope);
    if (toWebhook) this.webhooks.post(instance, event, envelope);
    return envelope;
  }

  /**
   * Emits `event` with a payload given as JSON text to `/<instance>` as a raw socket.io packet: the encoder is bypassed,
   * so a payload JSON.stringify cannot encode (nested 20,000 deep) arrives as a hostile server would send it.
   */
  emitRawText(instance: string, event: string, payloadJson: string): void {
    for (const socket of this.requireIo().of(`/${instance}`).sockets.values()) socket.conn.write(`2/${instance},[${JSON.stringify(event)},${payloadJson}]`);
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
    const nsp = this.requireIo().of(`/${instance}`);
    let event = 'messages.upsert';
    let payload: unknown;
    switch (kind) {
      case 'null-data':
        payload = this.envelope(instance, event, null);
        break;
      case 'no-key': {
        const { key: _key, ...rest } = this.messageUpsert({ instance, remoteJid: '5511999990000', text: 'no key' });
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

  /**
   * Drops client connections of one instance (or of all namespaces); returns how many were dropped.
   * `'transport'` (default) closes the underlying Engine.IO connection without a socket.io DISCONNECT packet,
   * like a network cut or a server crash: the client sees 'transport close' and auto-reconnects.
   * `'server-disconnect'` is `socket.disconnect(true)`: the client sees 'io server disconnect' and does NOT
   * reconnect by itself (it must call `socket.connect()`).
   */
  dropConnections(instance?: string, mode: 'transport' | 'server-disconnect' = 'transport'): number {
    if (!this.io) return 0;
    let dropped = 0;
    const nsps: Namespace[] =
      instance === undefined ? [...this.io._nsps.values()] : [this.io._nsps.get(`/${instance}`)].filter(isNsp);
    for (const nsp of nsps) {
      for (const socket of [...nsp.sockets.values()]) {
        if (mode === 'server-disconnect') socket.disconnect(true);
        else socket.conn.close();
        dropped++;
      }
    }
    return dropped;
  }

  /** Number of sockets connected to `/<instance>` (0 when the namespace does not exist). */
  connectedClients(instance: string): number {
    return this.io?._nsps.get(`/${instance}`)?.sockets.size ?? 0;
  }

  /** Resolves once at least `n` clients are connected to `/<instance>`; rejects after `timeoutMs`. */
  async waitForClients(instance: string, n: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.connectedClients(instance) < n) {
      if (Date.now() > deadline) {
        throw new Error(
          `waitForClients(${instance}, ${n}) timed out after ${timeoutMs} ms (connected: ${this.connectedClients(instance)})`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  // ---------------------------------------------------------------- payload builders

  /** Builds `messages.upsert` data as Evolution's prepareMessage does. */
  messageUpsert(opts: MessageUpsertOptions): EvolutionMessageData {
    const id = opts.id ?? upperHex(16);
    const fromMe = opts.fromMe ?? false;
    const remoteJid = toJid(opts.remoteJid);
    const key: EvolutionMessageKey = { remoteJid, fromMe, id };
    if (opts.participant !== undefined) key.participant = opts.participant;
    return {
      key,
      pushName: opts.pushName ?? (fromMe ? 'Você' : `Contact ${remoteJid.split('@')[0]}`),
      status: opts.status ?? 'DELIVERY_ACK',
      message: { conversation: opts.text },
      messageType: 'conversation',
      messageTimestamp: opts.timestamp ?? Math.floor(Date.now() / 1000),
      instanceId: this.resolve(opts.instance).instanceId,
      source: opts.source ?? deviceFromMessageId(id),
    };
  }

  /** Builds `messages.upsert` data for an image message. */
  imageMessage(opts: ImageMessageOptions): EvolutionMessageData {
    const base = this.messageUpsert({ ...opts, text: '' });
    const image: EvolutionImageMessage = {
      url: opts.url ?? `https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m232/${upperHex(8).toLowerCase()}.enc`,
      mimetype: opts.mimetype ?? 'image/jpeg',
      fileSha256: randomBytes(32).toString('base64'),
      fileLength: String(opts.fileLength ?? 54321),
      height: 1280,
      width: 960,
      mediaKey: randomBytes(32).toString('base64'),
      fileEncSha256: randomBytes(32).toString('base64'),
      directPath: `/o1/v/t62.7118-24/f1/m232/${upperHex(8).toLowerCase()}.enc`,
      mediaKeyTimestamp: String(Math.floor(Date.now() / 1000)),
    };
    if (opts.caption !== undefined) image.caption = opts.caption;
    return { ...base, message: { imageMessage: image }, messageType: 'imageMessage' };
  }

  /** Builds `messages.update` data (acks / status changes). */
  messagesUpdate(opts: MessagesUpdateOptions): EvolutionMessageUpdateData {
    const data: EvolutionMessageUpdateData = {
      keyId: opts.keyId,
      remoteJid: toJid(opts.remoteJid),
      fromMe: opts.fromMe ?? true,
      participant: opts.participant,
      status: opts.status,
      instanceId: this.resolve(opts.instance).instanceId,
    };
    if (opts.messageId !== undefined) data.messageId = opts.messageId;
    if (opts.pollUpdates !== undefined) data.pollUpdates = opts.pollUpdates;
    return data;
  }

  /** Builds `messages.delete` data (the Baileys key of the revoked message). */
  messagesDelete(opts: { remoteJid: string; id: string; fromMe?: boolean; participant?: string }): EvolutionMessageKey {
    const key: EvolutionMessageKey = { remoteJid: toJid(opts.remoteJid), fromMe: opts.fromMe ?? false, id: opts.id };
    if (opts.participant !== undefined) key.participant = opts.participant;
    return key;
  }

  /** Builds `connection.update` data. */
  connectionUpdate(opts: ConnectionUpdateOptions): EvolutionConnectionUpdateData {
    const inst = this.resolve(opts.instance);
    const defaultReason = opts.state === 'close' || opts.state === 'refused' ? 401 : 200;
    return {
      instance: inst.name,
      wuid: inst.wuid,
      profileName: inst.profileName,
      profilePictureUrl: null,
      state: opts.state,
      statusReason: opts.statusReason ?? defaultReason,
    };
  }

  /** Builds `qrcode.updated` data. */
  qrcodeUpdated(opts: { instance: string; pairingCode?: string | null }): EvolutionQrcodeData {
    const code = `2@${randomBytes(48).toString('base64')},${randomBytes(32).toString('base64')},${randomBytes(32).toString('base64')},${randomBytes(32).toString('base64')}`;
    return {
      qrcode: {
        instance: opts.instance,
        pairingCode: opts.pairingCode ?? null,
        code,
        base64: `data:image/png;base64,${randomBytes(64).toString('base64')}`,
      },
    };
  }

  /** Builds `presence.update` data (default: the contact is composing). */
  presenceUpdate(opts: {
    remoteJid: string;
    participant?: string;
    presence?: EvolutionPresenceData['presences'][string]['lastKnownPresence'];
  }): EvolutionPresenceData {
    const id = toJid(opts.remoteJid);
    return { id, presences: { [opts.participant ?? id]: { lastKnownPresence: opts.presence ?? 'composing' } } };
  }

  /** Generates an iOS-style WhatsApp message id ('3A' + 18 uppercase hex). */
  static newIosMessageId(): string {
    return `3A${upperHex(9)}`;
  }

  // ---------------------------------------------------------------- internals

  private envelope<T>(instance: string, event: string, data: T): EvolutionEnvelope<T> {
    const inst = this.resolve(instance);
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

  private passesFilter(instance: string, event: string): boolean {
    const cfg = this.websocketConfigs.get(instance);
    if (!cfg) return !this.opts.requireWebsocketSet;
    if (!cfg.enabled) return false;
    return cfg.events.includes(event.replace(/[.-]/g, '_').toUpperCase());
  }

  private resolve(instance: string): ResolvedInstance {
    let inst = this.instances.get(instance) ?? this.synthetic.get(instance);
    if (!inst) {
      // Instance without a configured token: synthesise a stable identity on first use.
      inst = { name: instance, token: '', wuid: DEFAULT_WUID, profileName: 'ZapThinker Sim', instanceId: randomUUID() };
      this.synthetic.set(instance, inst);
    }
    return inst;
  }

  private requireIo(): IoServer {
    if (!this.io) throw new Error('ZapThinkerSimulator is not running; call start() first');
    return this.io;
  }

  private isKnownToken(key: string): boolean {
    if (key === this.globalApiKey) return true;
    for (const inst of this.instances.values()) if (inst.token === key) return true;
    return false;
  }

  private async listen(port: number): Promise<void> {
    const http = createServer((req, res) => this.onHttpRequest(req, res));
    const io = new IoServer(http, {
      pingInterval: this.opts.pingIntervalMs ?? 25_000,
      pingTimeout: this.opts.pingTimeoutMs ?? 20_000,
      connectTimeout: this.opts.connectTimeoutMs ?? 45_000,
      cors: { origin: '*' },
      allowRequest: (req, callback) => this.allowRequest(req, callback),
    });
    io.on('connection', (socket) => {
      // Evolution listens for 'sendNode' only; accept and ignore it.
      socket.on('sendNode', () => undefined);
    });
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          const onError = (err: Error): void => reject(err);
          http.once('error', onError);
          http.listen(port, this.host, () => {
            http.off('error', onError);
            resolve();
          });
        });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) {
          io.close();
          throw err;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.boundPort = (http.address() as AddressInfo).port;
    this.http = http;
    this.io = io;
  }

  private async closeServers(): Promise<void> {
    const io = this.io;
    const http = this.http;
    this.io = undefined;
    this.http = undefined;
    for (const res of this.hungResponses) res.destroy();
    this.hungResponses.clear();
    if (!io || !http) return;
    const closed = new Promise<void>((resolve) => {
      void io.close(() => resolve());
    });
    http.closeAllConnections();
    await closed;
  }

  private allowRequest(req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void): void {
    const url = new URL(req.url ?? '', 'http://localhost');
    const params = url.searchParams;
    const header = req.headers['apikey'];
    const apikey = params.get('apikey') || (Array.isArray(header) ? header[0] : header) || undefined;
    const record = (accepted: boolean, reason?: string): void => {
      this.handshakes.push({ url: req.url ?? '', apikey, accepted, reason, at: Date.now() });
      callback(accepted ? null : (reason ?? 'Authentication error'), accepted);
    };
    const allowed = this.opts.allowedHosts ?? [];
    const remote = req.socket.remoteAddress ?? '';
    if (params.has('EIO') && (allowed.includes('*') || allowed.includes(remote))) return record(true);
    if (!apikey) return record(false, 'apiKey is required');
    if (this.authRejected) return record(false, this.authRejected);
    if (!this.isKnownToken(apikey)) return record(false, 'Invalid global token');
    return record(true);
  }

  private onHttpRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = undefined;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw) as unknown;
        } catch {
          body = raw;
        }
      }
      this.requests.push({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: { ...req.headers },
        body,
        receivedAt: Date.now(),
      });
      void this.route(req, res, body).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) this.json(res, 500, evolutionError(500, [String(err)]));
      });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const method = req.method ?? 'GET';
    const m = /^\/(message\/sendText|websocket\/set|websocket\/find|webhook\/set|webhook\/find)\/([^/]+)\/?$/.exec(path);
    if (!m) {
      this.json(res, 404, evolutionError(404, ['Not Found']));
      return;
    }
    const route = m[1];
    const instance = decodeURIComponent(m[2]);
    const expected = route.endsWith('/find') ? 'GET' : 'POST';
    if (method !== expected) {
      this.json(res, 404, evolutionError(404, ['Not Found']));
      return;
    }

    if (route === 'message/sendText' && this.failures.length > 0) {
      const failure = this.failures.shift() as SendFailure;
      this.json(res, failure.status, evolutionError(failure.status, ['Simulated failure']));
      return;
    }

    // Evolution auth guard: global key, or this instance's own token.
    const header = req.headers['apikey'];
    const key = Array.isArray(header) ? header[0] : header;
    const inst = this.instances.get(instance);
    const authorised = key !== undefined && (key === this.globalApiKey || (inst !== undefined && inst.token !== '' && inst.token === key));
    if (!authorised) {
      this.json(res, 401, { status: 401, error: 'Unauthorized', response: { message: 'Unauthorized' } });
      return;
    }
    if (this.strictInstances && !inst) {
      this.json(res, 404, evolutionError(404, [`The "${instance}" instance does not exist`]));
      return;
    }

    switch (route) {
      case 'message/sendText':
        await this.handleSendText(res, instance, body);
        return;
      case 'websocket/set':
        this.handleWebsocketSet(res, instance, body);
        return;
      case 'webhook/set': {
        const error = this.webhooks.set(instance, body, EVOLUTION_CONFIG_EVENTS);
        if (error) this.json(res, 400, evolutionError(400, [[error]]));
        else this.json(res, 201, { webhook: { instanceName: instance, webhook: this.webhooks.find(instance) } });
        return;
      }
      case 'webhook/find':
        this.json(res, 200, this.webhooks.find(instance) ?? null);
        return;
      default:
        this.json(res, 200, this.websocketConfigs.get(instance) ?? null);
    }
  }

  private async handleSendText(res: ServerResponse, instance: string, body: unknown): Promise<void> {
    const obj = isRecord(body) ? body : {};
    const missing: string[] = [];
    if (!('number' in obj)) missing.push('instance requires property "number"');
    if (!('text' in obj)) missing.push('instance requires property "text"');
    if (missing.length > 0) {
      this.json(res, 400, evolutionError(400, [missing]));
      return;
    }
    const number = obj['number'];
    const text = obj['text'];
    if (typeof number !== 'string' || typeof text !== 'string') {
      const errs: string[] = [];
      if (typeof number !== 'string') errs.push('instance.number is not of a type(s) string');
      if (typeof text !== 'string') errs.push('instance.text is not of a type(s) string');
      this.json(res, 400, evolutionError(400, [errs]));
      return;
    }
    if (text.trim().length === 0) {
      this.json(res, 400, evolutionError(400, ['Text is required']));
      return;
    }
    const jid = toJid(number);
    if (this.notOnWhatsApp.has(jid)) {
      this.json(res, 400, evolutionError(400, [{ jid, exists: false, number }]));
      return;
    }
    const delay = typeof obj['delay'] === 'number' ? obj['delay'] : 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));

    const id = `BAE5${upperHex(6)}`;
    const ts = Math.floor(Date.now() / 1000);
    const response: SendTextResponse = {
      key: { remoteJid: jid, fromMe: true, id },
      message: { extendedTextMessage: { text } },
      messageTimestamp: String(ts),
      status: 'PENDING',
    };
    const echo: EvolutionMessageData = {
      ...this.messageUpsert({ instance, remoteJid: jid, text, fromMe: true, id, timestamp: ts }),
      status: 'SERVER_ACK',
    };
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.io) this.emit(instance, 'send.message', echo);
    }, this.opts.sendEchoDelayMs ?? 5);
    this.timers.add(timer);

    if (this.hangs > 0) {
      this.hangs--;
      this.hungResponses.add(res);
      res.on('close', () => this.hungResponses.delete(res));
      return;
    }
    this.json(res, 201, response);
  }

  private handleWebsocketSet(res: ServerResponse, instance: string, body: unknown): void {
    const ws = isRecord(body) && isRecord(body['websocket']) ? body['websocket'] : undefined;
    if (!ws || typeof ws['enabled'] !== 'boolean') {
      this.json(res, 400, evolutionError(400, [['instance.websocket requires property "enabled"']]));
      return;
    }
    const rawEvents: unknown[] = Array.isArray(ws['events']) ? (ws['events'] as unknown[]) : [];
    const bad = rawEvents.filter((e) => typeof e !== 'string' || !EVOLUTION_CONFIG_EVENTS.includes(e));
    if (bad.length > 0) {
      this.json(
        res,
        400,
        evolutionError(400, [bad.map((e) => `instance.websocket.events is not one of enum values: ${String(e)}`)]),
      );
      return;
    }
    const enabled = ws['enabled'];
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
    if (enabled && this.io) this.touch(instance);
    this.json(res, 201, record);
  }

  private json(res: ServerResponse, status: number, payload: unknown): void {
    const text = JSON.stringify(payload);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNsp(v: Namespace | undefined): v is Namespace {
  return v !== undefined;
}
