import { type BeforeApplicationShutdown, type DynamicModule, Inject, Injectable, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { Bridge } from './bridge';
import { ChannelsController } from './channels/channels.controller';
import { API_RATE_LIMITER, API_TOKENS } from './common/api-auth.guard';
import { CommandsController } from './commands/commands.controller';
import { EventsGateway } from './gateway/events.gateway';
import { HealthController } from './health/health.controller';
import { InboundController } from './inbound/inbound.controller';
import { WebhooksController } from './sinks/webhook/webhook.controller';

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

/** The HTTP application around one Bridge. */
@Module({})
export class AppModule {
  static forBridge(bridge: Bridge): DynamicModule {
    return {
      module: AppModule,
      controllers: [HealthController, ChannelsController, WebhooksController, InboundController, CommandsController],
      providers: [
        { provide: Bridge, useValue: bridge },
        { provide: API_TOKENS, useValue: bridge.config.apiTokens },
        { provide: API_RATE_LIMITER, useValue: bridge.rateLimiter },
        BridgeLifecycle,
        EventsGateway,
      ],
    };
  }
}
