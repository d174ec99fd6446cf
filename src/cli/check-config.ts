import { ConfigError, loadConfig, type AppConfig } from '../config/config.loader';

/** Where `checkConfig` writes: the summary to `out`, problems and warnings to `err`. */
export interface CheckOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

/**
 * `chatbridge check-config <file>` (docs/configuration.md#checking-a-file): validates `file` with the environment
 * exactly as the service does at start (`loadConfig` with CHATBRIDGE_CONFIG pointing at it), prints every problem
 * and returns the exit code: 0 when the service would start with it, 1 when not, 2 for a wrong invocation.
 */
export function checkConfig(args: readonly string[], env: NodeJS.ProcessEnv, output: CheckOutput): number {
  if (args.length !== 1 || args[0].startsWith('-')) {
    output.err('usage: chatbridge check-config <file>   (the environment is read as the service reads it)');
    return 2;
  }
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig({ env: { ...env, CHATBRIDGE_CONFIG: args[0] } });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    output.err(`${args[0]}: ${err.message}`);
    return 1;
  }
  for (const warning of loaded.warnings) output.err(`warning: ${warning}`);
  output.out(`${args[0]}: valid; ${summary(loaded.config)}`);
  return 0;
}

/** One line: what the service would run with this configuration. */
function summary(config: AppConfig): string {
  const channels = config.channels.map((c) => `${c.id} (${c.provider}, ${c.mode})`).join(', ') || 'none';
  const kafka = config.kafka ? `Kafka ${config.kafka.brokers.join(',')}` : 'no Kafka';
  const sinks = !config.kafka && !config.webhooks.length ? 'embedded mode (events on stdout)' : `${kafka}, ${config.webhooks.length} webhook endpoint(s)`;
  return `channels: ${channels}; ${sinks}; ${config.apiTokens.length} API token(s); port ${config.port}`;
}
