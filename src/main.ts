import 'reflect-metadata';
import { startBridge, type RunningBridge } from './boot/bootstrap';
import type { Bridge } from './boot/bridge';
import { createRootLogger } from './common/logger';
import { ConfigError, loadConfig } from './config/config.loader';

/** Production entry point (`npm start`): config from CHATBRIDGE_CONFIG + environment (docs/configuration.md). */
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

  // Installed before any start-up work: a signal while Kafka, the channels or the HTTP server are still starting is
  // neither ignored nor fatal; the bridge stops once start-up settles (within the same hard stop as any shutdown).
  let running: RunningBridge | undefined;
  // Known from the moment it is built: the channels may receive events before start-up settles.
  let bridge: Bridge | undefined;
  let stopping = false;
  const stop = (r: RunningBridge) =>
    r.close().then(
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
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, duringStartUp: !running }, running ? 'shutting down' : 'shutting down: stopping as soon as start-up work settles');
    const hardStop = setTimeout(() => {
      log.error('shutdown took longer than shutdownGraceMs + 5 s; exiting');
      // Synchronous: what the Kafka sink still holds is in the dead-letter file before the process ends, during
      // start-up as after it.
      bridge?.kafka?.spill();
      process.exit(1);
    }, config.shutdownGraceMs + 5000);
    hardStop.unref();
    if (running) void stop(running);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    running = await startBridge(config, log, { built: (b) => (bridge = b) });
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    log.flush();
    process.exit(1);
  }
  if (stopping) {
    void stop(running);
    return;
  }
  log.info({ port: config.port, channels: config.channels.length, kafka: Boolean(config.kafka), webhooks: config.webhooks.length }, 'chatbridge started');
}

void main();
