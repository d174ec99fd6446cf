/**
 * Type globs (webhook `types` filters and live-stream subscriptions): `*` matches any run of characters, dots
 * included; every other character matches itself. Matching never backtracks: a pattern is split at its stars into
 * literal segments, the first anchored at the start, the last at the end, and the ones between found left to right,
 * each at its leftmost place after the previous one (leftmost is always safe: a later place leaves less room for
 * what follows). Each segment is searched with Knuth-Morris-Pratt and the search never moves back in the text, so a
 * match makes at most 2n + m character comparisons for a text of n characters and a pattern of m: O(n + m) time,
 * O(m) to compile, however many stars the pattern has.
 */

/** Limits on a list of globs (`api.stream.maxPatterns`, `api.stream.maxPatternLength`). */
export interface GlobLimits {
  maxPatterns: number;
  maxPatternLength: number;
}

/** Characters a glob may use: those of CloudEvent types, and `*`. */
export const GLOB_CHARS = /^[A-Za-z0-9._*-]+$/;

/** A compiled glob: true when the whole text matches. */
export type GlobMatcher = (text: string) => boolean;

/** One literal segment with its KMP failure table. */
interface Segment {
  text: string;
  fail: Int32Array;
}

/** Compiles a glob into a linear-time matcher. */
export function compileGlob(pattern: string): GlobMatcher {
  const parts = pattern.split('*');
  if (parts.length === 1) return (text) => text === pattern;
  const prefix = parts[0];
  const suffix = parts[parts.length - 1];
  // Consecutive stars leave empty segments: they match nothing more than one star does.
  const middle = parts.slice(1, -1).filter((p) => p.length > 0).map(segment);
  const fixed = prefix.length + suffix.length;
  return (text) => {
    if (text.length < fixed || !text.startsWith(prefix) || !text.endsWith(suffix)) return false;
    let from = prefix.length;
    const end = text.length - suffix.length;
    for (const seg of middle) {
      from = find(seg, text, from, end);
      if (from < 0) return false;
    }
    return true;
  };
}

/** Problems of a list of globs against the limits, each as `<at>…: message`; empty when within them. */
export function globLimitProblems(patterns: readonly unknown[], limits: GlobLimits, at: string): string[] {
  const problems: string[] = [];
  if (patterns.length > limits.maxPatterns) {
    problems.push(`${at}: at most ${limits.maxPatterns} patterns (api.stream.maxPatterns); got ${patterns.length}`);
  }
  patterns.forEach((p, i) => {
    if (typeof p === 'string' && p.length > limits.maxPatternLength) {
      problems.push(`${at}[${i}]: at most ${limits.maxPatternLength} characters (api.stream.maxPatternLength); got ${p.length}`);
    }
  });
  return problems;
}

function segment(text: string): Segment {
  const fail = new Int32Array(text.length);
  for (let i = 1, k = 0; i < text.length; i++) {
    while (k > 0 && text[i] !== text[k]) k = fail[k - 1];
    if (text[i] === text[k]) k++;
    fail[i] = k;
  }
  return { text, fail };
}

/** Index just past the leftmost occurrence of `seg` in text[from, end), or -1. */
function find(seg: Segment, text: string, from: number, end: number): number {
  const { text: s, fail } = seg;
  for (let i = from, k = 0; i < end; i++) {
    while (k > 0 && text[i] !== s[k]) k = fail[k - 1];
    if (text[i] === s[k]) k++;
    if (k === s.length) return i + 1;
  }
  return -1;
}
