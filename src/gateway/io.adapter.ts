import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';

/** Room for socket.io framing around a command: between the API limit and this, a command is acked 413 by the gateway. */
const FRAME_HEADROOM_BYTES = 64 * 1024;

/**
 * Nest's socket.io adapter on the HTTP server, with the API's message size limit: a message larger than
 * `api.maxBodyBytes` plus framing headroom closes the connection before it is read into memory (engine.io
 * `maxHttpBufferSize`); smaller ones over the limit reach the gateway, which acks a 413.
 */
export class BridgeIoAdapter extends IoAdapter {
  constructor(
    app: INestApplicationContext,
    private readonly maxBodyBytes: number,
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    return super.createIOServer(port, { ...options, maxHttpBufferSize: this.maxBodyBytes + FRAME_HEADROOM_BYTES }) as Server;
  }
}
