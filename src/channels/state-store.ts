import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChannelStore } from '../connectors/connector.interface';

/**
 * One channel's store: a JSON file under `stateDir` (`<channelId>.json`), written whole and atomically (temp file +
 * rename) on every change. Each key's value is kept as the JSON text it was written as, so a change serializes only
 * that value, and a caller that keeps the parts of a large value serialized (Smartsupp's visitors) hands over the
 * text itself (`setJson`).
 */
export class FileChannelStore implements ChannelStore {
  private readonly file: string;
  /** Each key's value as JSON text, in the file's order. */
  private readonly texts = new Map<string, string>();
  /** Values as given to `set`, or parsed from their text when first read. */
  private readonly values = new Map<string, unknown>();

  constructor(dir: string, channelId: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, `${channelId}.json`);
    for (const [key, value] of Object.entries(readJson(this.file))) {
      this.texts.set(key, JSON.stringify(value));
      this.values.set(key, value);
    }
  }

  get<T>(key: string): T | undefined {
    if (!this.values.has(key)) {
      const text = this.texts.get(key);
      if (text === undefined) return undefined;
      this.values.set(key, JSON.parse(text));
    }
    return this.values.get(key) as T;
  }

  set(key: string, value: unknown): void {
    const text = value === undefined ? undefined : JSON.stringify(value);
    if (text === undefined) {
      this.texts.delete(key);
      this.values.delete(key);
    } else {
      this.texts.set(key, text);
      this.values.set(key, value);
    }
    this.write();
  }

  setJson(key: string, json: string): void {
    this.texts.set(key, json);
    this.values.delete(key);
    this.write();
  }

  private write(): void {
    const parts: string[] = [];
    for (const [key, text] of this.texts) parts.push(`${JSON.stringify(key)}:${text}`);
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `{${parts.join(',')}}`);
    renameSync(tmp, this.file);
  }
}

function readJson(file: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
