import { randomUUID } from 'node:crypto';
import * as parser from 'socket.io-parser';
import { io, type Socket } from 'socket.io-client';

/**
 * Hostile JSON for tests: text nested deeper than JSON.stringify (or any recursive walker) can take, built as text,
 * and a real socket.io client able to send it (its own encoder recurses, so the text is spliced into the frame).
 */

/** `{"a":{"a":…1…}}` with `levels` objects, as JSON text. */
export function nestedJson(levels: number): string {
  return '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
}

/** A command body as JSON text whose `metadata` is `levels` objects deep (the body itself adds one). */
export function deepCommandJson(fields: Record<string, unknown>, levels: number): string {
  const head = JSON.stringify(fields);
  return `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"metadata":${nestedJson(levels)}}`;
}

const raw = new Map<string, string>();

/** A placeholder that RawEncoder writes as `text` itself; pass it as an emit argument. */
export function rawJson(text: string): string {
  const marker = `\u0000raw:${randomUUID()}`;
  raw.set(marker, text);
  return marker;
}

/** The standard socket.io encoder, except that rawJson placeholders become their JSON text in the frame. */
class RawEncoder extends parser.Encoder {
  override encode(packet: parser.Packet): Array<string | Buffer | ArrayBuffer> {
    return (super.encode(packet) as Array<string | Buffer | ArrayBuffer>).map((part) => {
      if (typeof part !== 'string') return part;
      let out = part;
      for (const [marker, text] of raw) {
        const quoted = JSON.stringify(marker);
        if (out.includes(quoted)) {
          out = out.replace(quoted, () => text);
          raw.delete(marker);
        }
      }
      return out;
    });
  }
}

/** A socket.io v4 client of the bridge's `/v1` namespace that can emit rawJson payloads; resolves once connected. */
export async function connectRawClient(url: string, token: string): Promise<Socket> {
  const socket = io(`${url}/v1`, {
    auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true, parser: { ...parser, Encoder: RawEncoder },
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}
