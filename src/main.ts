import 'reflect-metadata';
import { startBridge } from './bootstrap';
import { createRootLogger } from './common/logger';
import { ConfigError, loadConfig } from './config/config.loader';

/** Production entry point (`npm start`): config from CHATBRIDGE_CONFIG + environment (SPEC §2). */
async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chatbridge: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const { config, warnings } = loaded;
  // With no other sink, events go to stdout; logs then move to stderr so the event stream stays clean.
  const eventsOnStdout = !config.kafka && !config.webhooks.length;
  const log = createRootLogger(config.logLevel, eventsOnStdout ? 2 : 1);
  for (const w of warnings) log.warn(w);
  if (!config.apiTokens.length) log.warn('CHATBRIDGE_API_TOKENS is not set: every /v1 API call will be refused with 401');
  if (eventsOnStdout) log.info('no Kafka and no webhooks configured: embedded mode, events are written to stdout as JSON lines');

  const running = await startBridge(config, log);
  log.info({ port: config.port, channels: config.channels.length, kafka: Boolean(config.kafka), webhooks: config.webhooks.length }, 'chatbridge started');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const hardStop = setTimeout(() => {
      log.error('shutdown took longer than shutdownGraceMs + 5 s; exiting');
      // Synchronous: what the Kafka sink still holds is in the dead-letter file before the process ends.
      running.bridge.kafka?.spill();
      process.exit(1);
    }, config.shutdownGraceMs + 5000);
    hardStop.unref();
    running.close().then(
      () => {
        log.info('stopped');
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
