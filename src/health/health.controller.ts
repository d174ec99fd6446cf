import { Controller, Get, Header, HttpStatus, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ChannelRuntime } from '../channels/channel-runtime';
import { Metrics } from './metrics';
import { Readiness } from './readiness';

/** Liveness, readiness and Prometheus metrics (docs/api.md). No auth: probes and scrapers call these. */
@Controller()
export class HealthController {
  constructor(
    @Inject(Readiness) private readonly readiness: Readiness,
    @Inject(ChannelRuntime) private readonly channels: ChannelRuntime,
    @Inject(Metrics) private readonly metricsRegistry: Metrics,
  ) {}

  /** 200 while the process works. */
  @Get('healthz')
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** 200 when config is loaded and every sink (Kafka, if configured) can deliver; 503 otherwise. */
  @Get('readyz')
  readyz(@Res() res: Response): void {
    const ready = this.readiness.ready();
    res.status(ready ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).json({
      status: ready ? 'ready' : 'not_ready',
      sinks: this.readiness.sinks(),
      channels: this.channels.list().map(({ id, provider, mode, state }) => ({ id, provider, mode, state })),
    });
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async metrics(@Res() res: Response): Promise<void> {
    const registry = this.metricsRegistry.registry;
    res.setHeader('Content-Type', registry.contentType);
    res.send(await registry.metrics());
  }
}
