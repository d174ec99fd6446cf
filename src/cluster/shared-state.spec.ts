import { conversationStateKey, parseStateKey } from './shared-state';

describe('state topic keys', () => {
  it('a channel id names its mode record; <channelId>/conversation/<id> one spread conversation', () => {
    expect(parseStateKey('site')).toEqual({ channelId: 'site' });
    expect(parseStateKey(conversationStateKey('site', 'v-1'))).toEqual({ channelId: 'site', conversationId: 'v-1' });
    // Conversation ids are opaque: a slash inside one survives the round trip.
    expect(parseStateKey(conversationStateKey('site', 'a/b'))).toEqual({ channelId: 'site', conversationId: 'a/b' });
  });

  it('keys of neither kind are not the bridge\'s records', () => {
    for (const key of ['', '/conversation/v-1', 'site/other/v-1', 'site/conversation/', 'site/']) expect(parseStateKey(key)).toBeUndefined();
  });
});
