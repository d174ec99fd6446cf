import { compileGlob, globLimitProblems } from './glob';

/** The definition, by dynamic programming (O(n·m)): dp[i][j] = text[0, i) matches pattern[0, j). */
function reference(pattern: string, text: string): boolean {
  let prev = new Array<boolean>(pattern.length + 1).fill(false);
  prev[0] = true;
  for (let j = 1; j <= pattern.length; j++) prev[j] = prev[j - 1] && pattern[j - 1] === '*';
  for (let i = 1; i <= text.length; i++) {
    const row = new Array<boolean>(pattern.length + 1).fill(false);
    for (let j = 1; j <= pattern.length; j++) {
      row[j] = pattern[j - 1] === '*' ? row[j - 1] || prev[j] : prev[j - 1] && pattern[j - 1] === text[i - 1];
    }
    prev = row;
  }
  return prev[pattern.length];
}

/** A small deterministic PRNG (mulberry32), so a failure can be reproduced. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('compileGlob', () => {
  it('matches the whole text: * spans any characters, dots included; the rest is literal', () => {
    const m = (p: string, t: string) => compileGlob(p)(t);
    expect(m('chatbridge.message.*', 'chatbridge.message.received')).toBe(true);
    expect(m('chatbridge.message.*', 'chatbridge.messageXreceived')).toBe(false);
    expect(m('chatbridge.message.*', 'chatbridge.message.')).toBe(true);
    expect(m('chatbridge.*', 'chatbridge.message.received')).toBe(true);
    expect(m('*.status', 'chatbridge.channel.status')).toBe(true);
    expect(m('*.status', 'chatbridge.channel.statusx')).toBe(false);
    expect(m('chatbridge.typing', 'chatbridge.typing.x')).toBe(false);
    expect(m('chatbridge.typing', 'chatbridge.typing')).toBe(true);
    expect(m('*', '')).toBe(true);
    expect(m('', '')).toBe(true);
    expect(m('', 'x')).toBe(false);
    expect(m('a*a', 'a')).toBe(false);
    expect(m('*message*re*', 'chatbridge.message.received')).toBe(true);
    expect(m('*message*xx*', 'chatbridge.message.received')).toBe(false);
    // Overlapping segment occurrences (the KMP failure table at work).
    expect(m('*aab*', 'aaab')).toBe(true);
    expect(m('*abab*c', 'abaabaac')).toBe(false);
    expect(m('*abab*c', 'abaababc')).toBe(true);
  });

  it('returns on the patterns that freeze a backtracking regex', () => {
    const text = 'chatbridge.message.received'.repeat(8);
    expect(compileGlob(`${'*'.repeat(25)}Z`)(text)).toBe(false);
    expect(compileGlob(`${'*a'.repeat(100)}Z`)('a'.repeat(10_000))).toBe(false);
    expect(compileGlob(`${'*a'.repeat(100)}*`)('a'.repeat(10_000))).toBe(true);
  });

  it('agrees with the definition on random patterns and texts', () => {
    const next = rng(13);
    const pick = (alphabet: string, max: number) => Array.from({ length: Math.floor(next() * (max + 1)) }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
    let matched = 0;
    for (let n = 0; n < 20_000; n++) {
      const pattern = pick('ab.**', 9);
      const text = pick('ab.', 12);
      const want = reference(pattern, text);
      if (compileGlob(pattern)(text) !== want) throw new Error(`"${pattern}" on "${text}": expected ${want}`);
      if (want) matched++;
    }
    // Both outcomes are well represented, so the agreement means something.
    expect(matched).toBeGreaterThan(1000);
    expect(matched).toBeLessThan(19_000);
  });
});

describe('globLimitProblems', () => {
  const limits = { maxPatterns: 2, maxPatternLength: 5 };

  it('names the list over the count and each pattern over the length, with the config key', () => {
    expect(globLimitProblems(['a*', 'b'], limits, 'types')).toEqual([]);
    expect(globLimitProblems(['a', 'b', 'c'], limits, 'types')).toEqual(['types: at most 2 patterns (api.stream.maxPatterns); got 3']);
    expect(globLimitProblems(['a', '******'], limits, 'webhooks[0].types')).toEqual(['webhooks[0].types[1]: at most 5 characters (api.stream.maxPatternLength); got 6']);
  });
});
