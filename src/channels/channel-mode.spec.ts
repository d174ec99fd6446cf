import { startMode } from './channel-mode';

describe('startMode: the mode a channel starts in', () => {
  it('uses the config when nothing (or nothing valid) was persisted', () => {
    expect(startMode('socket', undefined, true)).toEqual({ mode: 'socket' });
    expect(startMode('webhook', 'sideways', true)).toEqual({ mode: 'webhook' });
  });

  it('a persisted switch overrides the config, and says so', () => {
    expect(startMode('socket', 'webhook', true)).toEqual({ mode: 'webhook', note: { level: 'info', msg: expect.stringContaining('overrides the config\'s mode socket') } });
    expect(startMode('webhook', 'socket', true)).toEqual({ mode: 'socket', note: { level: 'info', msg: expect.stringContaining('restored from stateDir') } });
    expect(startMode('socket', 'socket', true)).toEqual({ mode: 'socket' });
    expect(startMode('socket', 'webhook', true, 'topic chatbridge.channels')).toEqual({ mode: 'webhook', note: { level: 'info', msg: expect.stringContaining('mode webhook restored from topic chatbridge.channels') } });
  });

  it('a persisted webhook mode is ignored, with a warning, when the channel can no longer take posts', () => {
    expect(startMode('socket', 'webhook', false)).toEqual({ mode: 'socket', note: { level: 'warn', msg: expect.stringContaining('starting in socket mode') } });
  });
});
