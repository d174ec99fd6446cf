import { type BeforeApplicationShutdown, type DynamicModule, Inject, Injectable, Module, type OnApplicationBootstrap, type Provider } from '@nestjs/common';
import { Bridge } from './bridge';
import { ChannelRuntime } from '../channels/channel-runtime';
import { ChannelsController } from '../channels/channels.controller';
import { ModeController } from '../channels/mode-controller';
import { API_RATE_LIMITER, API_TOKENS } from '../common/api-auth.guard';
import { CommandRouter } from '../commands/command-router';
import { CommandService } from '../commands/command.service';
import { CommandsController } from '../commands/commands.controller';
import { APP_CONFIG, ROOT_LOGGER } from '../common/injection';
import { AuthFailureLimiter } from '../common/rate-limit';
import { EventStream } from '../gateway/event-stream';
import { EventsGateway } from '../gateway/events.gateway';
import { HealthController } from '../health/health.controller';
import { Metrics } from '../health/metrics';
import { Readiness } from '../health/readiness';
import { InboundController } from '../inbound/inbound.controller';
import { InboundReceiver } from '../inbound/inbound.receiver';
import { EventPipeline } from '../pipeline/pipeline';
import { WebhooksController } from '../sinks/webhook/webhook.controller';
import { WebhookReplayer } from '../sinks/webhook/webhook.replay';
import { WebhookSink } from '../sinks/webhook/webhook.sink';

/** Starts the bridge once Nest is up and stops it (channels first, then sinks) on shutdown. */
@Injectable()
export class BridgeLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(@Inject(Bridge) private readonly bridge: Bridge) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bridge.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.bridge.stop();
  }
}

/** The HTTP application around one Bridge: each controller and gateway takes the services it uses, one by one. */
@Module({})
export class AppModule {
  static forBridge(bridge: Bridge): DynamicModule {
    const optional: Provider[] = bridge.webhooks ? [{ provide: WebhookSink, useValue: bridge.webhooks }] : [];
    return {
      module: AppModule,
      controllers: [HealthController, ChannelsController, WebhooksController, InboundController, CommandsController],
      providers: [
        { provide: Bridge, useValue: bridge },
        { provide: APP_CONFIG, useValue: bridge.config },
        { provide: ROOT_LOGGER, useValue: bridge.log },
        { provide: API_TOKENS, useValue: bridge.config.apiTokens },
        { provide: API_RATE_LIMITER, useValue: bridge.rateLimiter },
        { provide: AuthFailureLimiter, useValue: bridge.authFailures },
        { provide: Metrics, useValue: bridge.metrics },
        { provide: Readiness, useValue: bridge.readiness },
        { provide: EventPipeline, useValue: bridge.pipeline },
        { provide: ChannelRuntime, useValue: bridge.channels },
        { provide: ModeController, useValue: bridge.modes },
        { provide: InboundReceiver, useValue: bridge.inbound },
        { provide: CommandRouter, useValue: bridge.router },
        { provide: CommandService, useValue: bridge.commands },
        { provide: EventStream, useValue: bridge.stream },
        { provide: WebhookReplayer, useValue: bridge.replayer },
        ...optional,
        BridgeLifecycle,
        EventsGateway,
      ],
    };
  }
}
