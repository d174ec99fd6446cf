import { randomBytes } from 'node:crypto';
import type { EvolutionInstances } from './zapthinker.instances';
import {
  deviceFromMessageId, toJid, upperHex,
  type EvolutionConnectionState, type EvolutionConnectionUpdateData, type EvolutionImageMessage, type EvolutionMessageData, type EvolutionMessageKey,
  type EvolutionMessageSource, type EvolutionMessageStatus, type EvolutionMessageUpdateData, type EvolutionPresenceData, type EvolutionQrcodeData,
} from './zapthinker.protocol';

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

/** The event data Evolution builds, for the simulator's instances (each `data.instanceId` is the instance's). */
export class EvolutionPayloads {
  constructor(private readonly instances: EvolutionInstances) {}

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
      instanceId: this.instances.resolve(opts.instance).instanceId,
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
      instanceId: this.instances.resolve(opts.instance).instanceId,
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
    const inst = this.instances.resolve(opts.instance);
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
}
