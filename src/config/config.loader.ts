import { existsSync, readFileSync } from 'node:fs';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { globLimitProblems, type GlobLimits } from '../common/glob';
import { LOG_LEVELS, type LogLevel } from '../common/logger';
import type { ProviderDefinition } from '../connectors/connector.interface';
import { providerDefinition, supportedProviders } from '../connectors/registry';
import type { ProviderName } from '../envelope/event-types';
import { BRIDGE_DEAD_LETTER_ORIGINS } from '../pipeline/dead-letter-origins';
import type { WebhookConfig } from '../sinks/webhook/webhook.config';
import {
  ChannelBaseConfig, FileConfig, InboundAuthConfig, KafkaConfig, StreamConfig, type DeadLetterConfig, type LimitsConfig, type DedupeConfig, type ModeSwitchConfig, type ApiConfig, type ClusterConfig, type CommandsConfig, type ReconnectConfig,
} from './config.schema';
import { timerProblems } from './timers';

/** One validated channel; `options` is an instance of its provider's options class. */
export interface ChannelConfig<O extends object = object> {
  id: string;
  provider: ProviderName;
  mode: 'socket' | 'webhook';
  /** How the upstream authenticates `POST /v1/inbound/<id>`; required for webhook mode, absent: no inbound posts. */
  inbound?: InboundAuthConfig;
  options: O;
}

/** The whole validated configuration: the file plus the environment (docs/configuration.md). */
export interface AppConfig {
  kafka?: KafkaConfig;
  reconnect: ReconnectConfig;
  dedupe: DedupeConfig;
  deadLetter: DeadLetterConfig;
  /** Frame and event limits, checked where upstream input enters. */
  limits: LimitsConfig;
  shutdownGraceMs: number;
  stateDir: string;
  modeSwitch: ModeSwitchConfig;
  api: ApiConfig;
  commands: CommandsConfig;
  /** Channel ownership shared by replicas through a Kafka consumer group. */
  cluster: ClusterConfig;
  channels: ChannelConfig[];
  /** Outbound webhook endpoints (empty: none). */
  webhooks: WebhookConfig[];
  port: number;
  apiTokens: string[];
  logLevel: LogLevel;
  /** The file read, if any. */
  configPath?: string;
}

/** Raised when the configuration is invalid; `problems` lists every one, each with its path. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Inputs of `loadConfig`; both default to the real process. */
export interface LoadConfigInput {
  env?: NodeJS.ProcessEnv;
  /** Parsed file contents to use instead of reading `CHATBRIDGE_CONFIG` (tests, demo). */
  raw?: unknown;
}

/** Shortest API token accepted: short tokens can be guessed, even with failed attempts rate limited. */
export const MIN_API_TOKEN_LENGTH = 16;

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Reads, interpolates and validates the configuration once. Throws ConfigError listing every problem. */
export function loadConfig(input: LoadConfigInput = {}): { config: AppConfig; warnings: string[] } {
  const env = input.env ?? process.env;
  const problems: string[] = [];
  const warnings: string[] = [];
  let raw: unknown = input.raw;
  let configPath: string | undefined;

  if (raw === undefined) {
    configPath = env.CHATBRIDGE_CONFIG || './chatbridge.yaml';
    if (existsSync(configPath)) {
      raw = readYaml(configPath, problems);
    } else if (env.CHATBRIDGE_CONFIG) {
      problems.push(`CHATBRIDGE_CONFIG: file not found: ${configPath}`);
    } else {
      warnings.push(`no config file at ${configPath}: starting with no channels (set CHATBRIDGE_CONFIG)`);
      configPath = undefined;
    }
  }
  raw = raw ?? {};
  if (!isObject(raw)) {
    problems.push('(root): must be a mapping');
    raw = {};
  }
  const interpolated = interpolate(raw, '', env, problems) as Record<string, unknown>;
  applyEnvOverrides(interpolated, env);

  const { channels: rawChannels, ...rest } = interpolated;
  const file = plainToInstance(FileConfig, rest, { enableImplicitConversion: true, exposeDefaultValues: true });
  problems.push(...formatErrors(validateSync(file, { whitelist: true, forbidNonWhitelisted: true })));
  const channels = validateChannels(rawChannels, problems);
  checkWebhooks(file.webhooks, channels, globLimits(file.api?.stream), problems, warnings);
  if (file.cluster?.enabled === true && !file.kafka) problems.push('cluster.enabled: requires kafka (the replicas share the channels through a Kafka consumer group)');
  if (file.cluster && file.cluster.heartbeatIntervalMs * 3 > file.cluster.sessionTimeoutMs) problems.push('cluster.heartbeatIntervalMs: must be at most a third of cluster.sessionTimeoutMs');
  if (file.cluster?.enabled === true && file.cluster.handoverOverlapMs >= file.shutdownGraceMs) problems.push('cluster.handoverOverlapMs: must be below shutdownGraceMs (on SIGTERM the sinks need time to flush after the sockets close)');

  const port = parsePort(env.PORT, problems);
  const logLevel = (env.LOG_LEVEL || 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}`);
  const apiTokens = (env.CHATBRIDGE_API_TOKENS ?? '').split(',').map((t) => t.trim()).filter(Boolean);
  const short = apiTokens.flatMap((t, i) => (t.length < MIN_API_TOKEN_LENGTH ? [i + 1] : []));
  if (short.length) problems.push(`CHATBRIDGE_API_TOKENS: token${short.length > 1 ? 's' : ''} ${short.join(', ')} (counting from 1) shorter than ${MIN_API_TOKEN_LENGTH} characters; use long random tokens, e.g. \`openssl rand -hex 32\``);
  problems.push(...timerProblems(interpolated));

  if (problems.length) throw new ConfigError(withoutFollowUps(problems));
  return {
    config: {
      kafka: file.kafka, reconnect: file.reconnect, dedupe: file.dedupe, deadLetter: file.deadLetter, limits: file.limits, shutdownGraceMs: file.shutdownGraceMs, stateDir: file.stateDir, modeSwitch: file.modeSwitch,
      api: file.api, commands: file.commands, cluster: file.cluster,
      channels, webhooks: file.webhooks, port, apiTokens, logLevel, configPath,
    },
    warnings,
  };
}

function readYaml(path: string, problems: string[]): unknown {
  try {
    return parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    // The parser's message quotes the offending line, which may hold a secret: report position only.
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      problems.push(`${path}: YAML ${err.code}${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}`);
    } else {
      problems.push(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return undefined;
  }
}

/** Replaces `${VAR}` and `${VAR:-default}` in every string, recording each missing variable with its path. */
function interpolate(value: unknown, path: string, env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push(`${path || '(root)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, `${path}[${i}]`, env, problems));
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, path ? `${path}.${k}` : k, env, problems);
    return out;
  }
  return value;
}

function applyEnvOverrides(cfg: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const brokers = (env.KAFKA_BROKERS ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  if (brokers.length) cfg.kafka = { ...(isObject(cfg.kafka) ? cfg.kafka : {}), brokers };
}

function parsePort(v: string | undefined, problems: string[]): number {
  if (v === undefined || v === '') return 8080;
  // Digits only: Number() would read ' ' as 0 (a random port) and accept '1e3' or '0x1f90'.
  const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    problems.push('PORT: must be an integer 0..65535');
    return 8080;
  }
  return n;
}

/** Channels in two phases: the common fields, then the provider block with the provider's own class. */
function validateChannels(raw: unknown, problems: string[]): ChannelConfig[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push('channels: must be a list');
    return [];
  }
  const out: ChannelConfig[] = [];
  const seen = new Map<string, number>();
  raw.forEach((item: unknown, i) => {
    const at = `channels[${i}]`;
    if (!isObject(item)) {
      problems.push(`${at}: must be a mapping`);
      return;
    }
    const { id, provider, mode, inbound: rawInbound, ...blocks } = item;
    const base = plainToInstance(ChannelBaseConfig, { id, provider, mode }, { exposeDefaultValues: true });
    const baseErrors = formatErrors(validateSync(base, { whitelist: true, forbidNonWhitelisted: true }), at);
    problems.push(...baseErrors.map((p) => (p.startsWith(`${at}.provider:`) ? `${at}.provider: must be one of ${supportedProviders().join(', ')}` : p)));
    for (const key of Object.keys(blocks)) {
      if (key !== provider) problems.push(`${at}.${key}: unknown key${typeof provider === 'string' ? ` (this channel's provider is ${provider})` : ''}`);
    }
    if (typeof id === 'string') {
      const first = seen.get(id);
      if (first !== undefined) problems.push(`${at}.id: duplicate id "${id}" (also channels[${first}])`);
      else seen.set(id, i);
    }
    const def = typeof provider === 'string' ? providerDefinition(provider) : undefined;
    if (!def) {
      if (typeof provider === 'string' && !baseErrors.some((p) => p.startsWith(`${at}.provider`))) {
        problems.push(`${at}.provider: must be one of ${supportedProviders().join(', ')}`);
      }
      return;
    }
    const inbound = validateInbound(rawInbound, base.mode, def, at, problems);
    const block = blocks[def.name];
    if (!isObject(block)) {
      problems.push(`${at}.${def.name}: required (a mapping of ${def.name} options)`);
      return;
    }
    const options = plainToInstance(def.optionsClass, block, { enableImplicitConversion: true, exposeDefaultValues: true });
    problems.push(...formatErrors(validateSync(options, { whitelist: true, forbidNonWhitelisted: true }), `${at}.${def.name}`));
    out.push({ id: base.id, provider: def.name, mode: base.mode, ...(inbound ? { inbound } : {}), options });
  });
  return out;
}

/**
 * A channel's `inbound` block: exactly one of token / hmacSecret, only for providers with a webhook path,
 * and required in webhook mode, so a webhook-mode channel never accepts unauthenticated posts.
 */
function validateInbound(raw: unknown, mode: unknown, def: ProviderDefinition, at: string, problems: string[]): InboundAuthConfig | undefined {
  const capable = def.supportsWebhookMode && Boolean(def.inbound);
  if (mode === 'webhook' && !capable) problems.push(`${at}.mode: provider ${def.name} has no webhook API; only socket mode is possible`);
  if (raw === undefined || raw === null) {
    if (mode === 'webhook' && capable) problems.push(`${at}.inbound: required when mode is webhook (a token or an hmacSecret the upstream sends with every post)`);
    return undefined;
  }
  if (!capable) {
    problems.push(`${at}.inbound: provider ${def.name} has no webhook API; remove this block`);
    return undefined;
  }
  if (!isObject(raw)) {
    problems.push(`${at}.inbound: must be a mapping`);
    return undefined;
  }
  const inbound = plainToInstance(InboundAuthConfig, raw, { enableImplicitConversion: true, exposeDefaultValues: true });
  const errors = formatErrors(validateSync(inbound, { whitelist: true, forbidNonWhitelisted: true }), `${at}.inbound`);
  problems.push(...errors);
  const hasToken = inbound.token !== undefined;
  const hasHmac = inbound.hmacSecret !== undefined;
  if (hasToken === hasHmac) problems.push(`${at}.inbound: set exactly one of token or hmacSecret`);
  return errors.length || hasToken === hasHmac ? undefined : inbound;
}

/** A missing variable leaves '' behind, which may then fail the field's format too: report the variable alone. */
function withoutFollowUps(problems: string[]): string[] {
  const unset = new Set(problems.filter((p) => / environment variable \S+ is not set$/.test(p)).map((p) => p.slice(0, p.indexOf(': '))));
  return problems.filter((p) => / environment variable \S+ is not set$/.test(p) || !unset.has(p.slice(0, p.indexOf(': '))));
}

/** What a per-field validator cannot see: unique ids, a schedule whose first attempt is immediate, type globs within `api.stream`'s limits, unknown channels. */
function checkWebhooks(webhooks: unknown, channels: ChannelConfig[], limits: GlobLimits, problems: string[], warnings: string[]): void {
  if (!Array.isArray(webhooks)) return;
  const seen = new Map<string, number>();
  const channelIds = new Set(channels.map((c) => c.id));
  webhooks.forEach((w: Partial<WebhookConfig> | undefined, i) => {
    if (typeof w?.id === 'string') {
      const first = seen.get(w.id);
      if (first !== undefined) problems.push(`webhooks[${i}].id: duplicate id "${w.id}" (also webhooks[${first}])`);
      else seen.set(w.id, i);
      if (BRIDGE_DEAD_LETTER_ORIGINS.has(w.id)) problems.push(`webhooks[${i}].id: "${w.id}" is reserved (the bridge's own dead letters use it as their origin; replay and the dead-letter listing would take them for this endpoint's)`);
    }
    const schedule = w?.retrySchedule;
    if (Array.isArray(schedule) && schedule.length && schedule[0] !== 0) problems.push(`webhooks[${i}].retrySchedule: must start with 0 (the first attempt is immediate)`);
    if (Array.isArray(w?.types)) problems.push(...globLimitProblems(w.types, limits, `webhooks[${i}].types`));
    // A warning, not an error: the filter is valid, it just matches nothing today (a typo, or a channel to come).
    w?.channels?.forEach((c, j) => {
      if (typeof c === 'string' && !channelIds.has(c)) warnings.push(`webhooks[${i}].channels[${j}]: no channel "${c}" is configured; this filter entry matches nothing`);
    });
  });
}

/** The glob limits of `api.stream`; the defaults where those values are themselves invalid (reported on their own). */
function globLimits(stream: Partial<GlobLimits> | undefined): GlobLimits {
  const defaults = new StreamConfig();
  const valid = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;
  return {
    maxPatterns: valid(stream?.maxPatterns) ? stream.maxPatterns : defaults.maxPatterns,
    maxPatternLength: valid(stream?.maxPatternLength) ? stream.maxPatternLength : defaults.maxPatternLength,
  };
}

/** Flattens class-validator's tree into `path: message` lines. Values are never included. */
export function formatErrors(errors: ValidationError[], prefix = ''): string[] {
  const lines: string[] = [];
  for (const e of errors) {
    const path = /^\d+$/.test(e.property) ? `${prefix}[${e.property}]` : prefix ? `${prefix}.${e.property}` : e.property;
    const constraints = Object.entries(e.constraints ?? {});
    // A value of the wrong type also fails its range checks ('lots' is NaN): report the type error alone.
    const wrongType = constraints.some(([name]) => TYPE_CHECKS.has(name));
    for (const [name, msg] of constraints) {
      if (wrongType && !TYPE_CHECKS.has(name) && name !== 'isDefined') continue;
      if (name === 'isDefined') lines.push(`${path}: required`);
      else if (name === 'whitelistValidation') lines.push(`${path}: unknown key`);
      else if (name === 'nestedValidation') lines.push(`${path}: must be a mapping`);
      else lines.push(`${path}: ${msg.startsWith(`${e.property} `) ? msg.slice(e.property.length + 1) : msg}`);
    }
    if (e.children?.length) lines.push(...formatErrors(e.children, path));
  }
  // With several constraints failing on a missing value, "required" says it all.
  const required = new Set(lines.filter((l) => l.endsWith(': required')).map((l) => l.slice(0, -': required'.length)));
  return lines.filter((l) => l.endsWith(': required') || !required.has(l.slice(0, l.indexOf(': '))));
}

/** class-validator constraint names that check a value's type (as opposed to its range or format). */
const TYPE_CHECKS = new Set(['isInt', 'isNumber', 'isString', 'isBoolean', 'isArray']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
