import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChannelStore } from '../connectors/connector.interface';

/**
 * One channel's store: a JSON file under `stateDir` (`<channelId>.json`), written atomically
 * (temp file + rename) on every change. Meant for small, rarely changing state such as visitor ids.
 */
export class FileChannelStore implements ChannelStore {
  private readonly file: string;
  private data: Record<string, unknown>;

  constructor(dir: string, channelId: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, `${channelId}.json`);
    this.data = readJson(this.file);
  }

  get<T>(key: string): T | undefined {
    return this.data[key] as T | undefined;
  }

  set(key: string, value: unknown): void {
    this.data = { ...this.data, [key]: value };
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data));
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
