import { EventEmitter } from 'node:events';
import { WriteBacklog, type EngineConnection } from './write-backlog';

describe('WriteBacklog', () => {
  function connection(): EngineConnection {
    return Object.assign(new EventEmitter(), { transport: new EventEmitter() });
  }

  it('counts packets from creation until the transport reports them written', () => {
    const conn = connection();
    const backlog = new WriteBacklog(conn);
    for (let i = 0; i < 3; i++) conn.emit('packetCreate');
    conn.emit('flush', [1, 2]);
    expect(backlog.pending).toBe(3);
    conn.transport.emit('drain');
    expect(backlog.pending).toBe(1);
    conn.emit('flush', [3]);
    conn.transport.emit('drain');
    expect(backlog.pending).toBe(0);
  });

  it('counts the characters of those packets, strings and binary alike, control packets as nothing', () => {
    const conn = connection();
    const backlog = new WriteBacklog(conn);
    const packets = [{ type: 'message', data: 'x'.repeat(1000) }, { type: 'message', data: Buffer.alloc(300) }, { type: 'ping' }];
    for (const p of packets) conn.emit('packetCreate', p);
    expect(backlog.pendingChars).toBe(1300);
    conn.emit('flush', packets.slice(0, 1));
    conn.transport.emit('drain');
    expect(backlog.pendingChars).toBe(300);
    conn.emit('flush', packets.slice(1));
    conn.transport.emit('drain');
    expect(backlog.pendingChars).toBe(0);
  });

  it('follows a transport upgrade and stops counting once detached', () => {
    const conn = connection();
    const backlog = new WriteBacklog(conn);
    conn.emit('packetCreate');
    conn.emit('flush', [1]);
    conn.transport = new EventEmitter();
    conn.emit('upgrade', conn.transport);
    expect(backlog.pending).toBe(0);
    conn.emit('packetCreate');
    conn.emit('flush', [2]);
    expect(backlog.pending).toBe(1);
    conn.transport.emit('drain');
    expect(backlog.pending).toBe(0);
    backlog.detach();
    conn.emit('packetCreate');
    expect(backlog.pending).toBe(0);
  });
});
