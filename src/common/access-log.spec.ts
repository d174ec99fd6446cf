import { requestIdOf } from './access-log';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('requestIdOf', () => {
  it('takes an incoming id of letters, digits and ._:- up to 128 characters', () => {
    for (const id of ['abc', 'req-1234.abc:7', '01HZX3S7Q5KXG2J8V3N4M5P6R7', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x'.repeat(128)]) expect(requestIdOf(id)).toBe(id);
  });

  it('generates a UUID for a missing, repeated, too long or oddly written one', () => {
    for (const header of [undefined, '', ['a', 'b'], 'x'.repeat(129), 'two words', 'quote"d', 'line\nbreak', 'ünï', 'a/b', 'tok=1&x']) {
      expect(requestIdOf(header)).toMatch(UUID);
    }
    expect(requestIdOf(undefined)).not.toBe(requestIdOf(undefined));
  });
});
