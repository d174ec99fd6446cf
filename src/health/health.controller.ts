import { Controller, Get, Header, HttpStatus, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ChannelRuntime } from '../channels/channel-runtime';
import { Metrics } from './metrics';
import { Readiness } from './readiness';

/** Liveness, readiness and Prometheus metrics (docs/api.md). No auth: probes and scrapers call these. */
@Controller()
@ApiTags('probes')
export class HealthController {
  constructor(
    @Inject(Readiness) private readonly readiness: Readiness,
    @Inject(ChannelRuntime) private readonly channels: ChannelRuntime,
    @Inject(Metrics) private readonly metricsRegistry: Metrics,
  ) {}

  /** 200 while the process works. */
  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: 200 while the process works' })
  @ApiResponse({ status: 200, description: '`{status: "ok"}`' })
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** 200 when config is loaded and every sink (Kafka, if configured) can deliver; 503 otherwise. */
  @Get('readyz')
  @ApiOperation({ summary: 'Readiness: every sink can deliver (Kafka reachable)' })
  @ApiResponse({ status: 200, description: '`{status: "ready", sinks, channels}`' })
  @ApiResponse({ status: 503, description: '`{status: "not_ready", sinks, channels}`: a sink cannot deliver, or the bridge is stopping' })
  readyz(@Res() res: Response): void {
    const ready = this.readiness.ready();
    res.status(ready ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).json({
      status: ready ? 'ready' : 'not_ready',
      sinks: this.readiness.sinks(),
      channels: this.channels.list().map(({ id, provider, mode, state }) => ({ id, provider, mode, state })),
    });
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics (docs/operations.md)' })
  @ApiProduces('text/plain')
  @ApiResponse({ status: 200, description: 'The Prometheus text format' })
  @Header('Cache-Control', 'no-store')
  async metrics(@Res() res: Response): Promise<void> {
    const registry = this.metricsRegistry.registry;
    res.setHeader('Content-Type', registry.contentType);
    res.send(await registry.metrics());
  }
}
