import type { Server } from 'node:http';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Logger } from 'pino';
import { AppModule } from './app.module';
import { Bridge, type BridgeOptions } from './bridge';
import { accessLog } from '../common/access-log';
import { authFailureGate } from '../common/auth-failures';
import { connectionPolicy } from '../common/lingering-close';
import { PinoNestLogger } from '../common/logger';
import type { AppConfig } from '../config/config.loader';
import { jsonBodyParser } from '../common/json-body';
import { BridgeIoAdapter } from '../gateway/io.adapter';
import { inboundGate } from '../inbound/inbound.gate';
import { serveOpenApi } from '../openapi/openapi';

/** A running bridge with its HTTP server. */
export interface RunningBridge {
  app: NestExpressApplication;
  bridge: Bridge;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Graceful stop: channels, then sinks, then the HTTP server. */
  close(): Promise<void>;
}

/** How `startBridge` runs, beyond the bridge's own options. */
export interface StartOptions extends BridgeOptions {
  /** Address the HTTP server listens on (default all). */
  host?: string;
  /**
   * Called with the bridge as soon as it is built, before any start-up work: main's hard stop needs its Kafka sink
   * while start-up is still under way (the channels open before the command ledger is read).
   */
  built?: (bridge: Bridge) => void;
}

/** Builds and starts the bridge and its HTTP server. Used by main, the demo, the benchmark and the tests. */
export async function startBridge(config: AppConfig, log: Logger, opts: StartOptions = {}): Promise<RunningBridge> {
  const bridge = new Bridge(config, log, opts);
  opts.built?.(bridge);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forBridge(bridge), {
    logger: new PinoNestLogger(log),
    // The API's own JSON parser (below) answers 413/400 in the API's error shape.
    bodyParser: false,
    // Errors at start reach the caller (main exits non-zero; tests see the error) instead of process.exit.
    abortOnError: false,
  });
  app.disable('x-powered-by');
  // No ETag on API answers: Express would hash every body (a SHA-1 per 202 on the command door) for conditional GETs
  // that no client of this API makes; its answers are state that changes, read fresh.
  app.disable('etag');
  app.useWebSocketAdapter(new BridgeIoAdapter(app, config.api.maxBodyBytes));
  // First of all: nothing is served on a connection closing after a refusal, and every answer says Connection: close
  // while the bridge stops.
  app.use(connectionPolicy(() => bridge.stopping, (req) => {
    bridge.metrics.refused.inc({ origin: 'api', reason: 'after_refusal' });
    log.warn({ method: req.method, path: req.url?.split('?')[0] }, 'request pipelined behind a refused one on the same connection: not served (the connection is closing)');
  }));
  // Then every answer, refusals included, carries its request id and gets its access log line.
  app.use(accessLog(log));
  // First on /v1: an address past its failed authentications is refused before any body is read or token compared.
  app.use('/v1', authFailureGate(bridge.authFailures, (origin) => bridge.metrics.refused.inc({ origin, reason: 'auth_failures' })));
  // Before the JSON parser, which then skips these bodies: inbound posts are authenticated before their body is
  // read, then read raw within each channel's limits.
  app.use('/v1/inbound', inboundGate(bridge));
  app.use(jsonBodyParser(config.api.maxBodyBytes));
  // GET /openapi.json and /docs (docs/api.md#openapi): outside /v1, without auth like the probes.
  serveOpenApi(app);
  const server: Server = app.getHttpServer();
  server.keepAliveTimeout = config.api.keepAliveTimeoutMs;
  try {
    await app.listen(config.port, opts.host ?? '0.0.0.0');
  } catch (err) {
    // The bridge may be running already (the port is taken only after it started): it is stopped before the error
    // goes up, so a caller that goes on (a test, the demo) is not left with channels and consumers behind it.
    await app.close().catch(() => undefined);
    throw err;
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const close = (): Promise<void> => {
    // A request in flight now is answered keep-alive and its connection goes idle after it; with the keep-alive cut to
    // 1 ms it closes then instead of holding the server's close (after the bridge stopped) for api.keepAliveTimeoutMs.
    server.keepAliveTimeout = 1;
    return app.close();
  };
  return { app, bridge, url: `http://127.0.0.1:${port}`, close };
}
