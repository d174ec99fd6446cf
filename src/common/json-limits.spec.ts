import { measureJson, safeJson } from './json-limits';

/** `{"a":{"a":…}}` nested `depth` levels, built without recursion. */
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe('measureJson', () => {
  it('stops at the depth limit on a value nested 20,000 deep without overflowing the stack', () => {
    const m = measureJson(nested(20_000), { maxDepth: 64, maxBytes: 1e9 });
    expect(m.exceeded).toBe('depth');
    expect(m.depth).toBe(65);
  });

  it('stops at the byte limit and counts UTF-8 bytes, keys and punctuation', () => {
    expect(measureJson({ text: 'é'.repeat(600) }, { maxDepth: 64, maxBytes: 1000 })).toEqual({ depth: 1, bytes: 1212, exceeded: 'bytes' });
    const ok = { a: [1, 'xy', true, null], b: { c: false } };
    const m = measureJson(ok, { maxDepth: 64, maxBytes: 1000 });
    expect(m.exceeded).toBeUndefined();
    expect(m.depth).toBe(2);
    // Within a few bytes of the real serialization.
    expect(Math.abs(m.bytes - JSON.stringify(ok).length)).toBeLessThanOrEqual(4);
  });

  it('passes ordinary frames within their limits and counts arrays of depth 1 as depth 1', () => {
    expect(measureJson([1, 2, 3], { maxDepth: 1, maxBytes: 100 }).exceeded).toBeUndefined();
    expect(measureJson([[1]], { maxDepth: 1, maxBytes: 100 }).exceeded).toBe('depth');
    expect(measureJson('plain text', { maxDepth: 0, maxBytes: 100 })).toEqual({ depth: 0, bytes: 12 });
  });

  it('treats a cycle as too deep instead of looping', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(measureJson(a, { maxDepth: 64, maxBytes: 1e6 }).exceeded).toBe('depth');
  });

  it('counts a part measured before as its measure: the same figures as walking it, and its depth against the limit', () => {
    const frame = { event: 'x', data: { text: 'olá ✓', list: [1, true, null, { deep: nested(5) }] } };
    const event = { id: 'e1', data: { upstream: { event: 'x', payload: frame } } };
    const limits = { maxDepth: 64, maxBytes: 1_000_000 };
    const known = { value: frame, measure: measureJson(frame, limits) };
    expect(measureJson(event, limits, known)).toEqual(measureJson(event, limits));
    expect(measureJson(event, { maxDepth: 10, maxBytes: 1_000_000 }, known).exceeded).toBe('depth');
    expect(measureJson(event, { maxDepth: 64, maxBytes: known.measure.bytes }, known).exceeded).toBe('bytes');
  });

  it('counts a Buffer by its length', () => {
    expect(measureJson({ b: Buffer.alloc(5000) }, { maxDepth: 4, maxBytes: 4000 }).exceeded).toBe('bytes');
  });
});

describe('safeJson', () => {
  it('is JSON.stringify for ordinary values', () => {
    const v = { a: [1, 'x', null, { b: true }], d: new Date(0), u: undefined };
    expect(safeJson(v)).toBe(JSON.stringify(v));
  });

  it('serializes a value too deep for JSON.stringify, and the text parses back to the same shape', () => {
    const deep = nested(20_000);
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    const text = safeJson(deep);
    expect(text.startsWith('{"a":{"a":')).toBe(true);
    expect(text.length).toBe('{"a":'.length * 20_000 + 1 + 20_000);
    // V8's JSON.parse does not recurse, so the text round-trips.
    let back = JSON.parse(text) as unknown;
    let depth = 0;
    while (typeof back === 'object' && back !== null) {
      back = (back as { a: unknown }).a;
      depth++;
    }
    expect(depth).toBe(20_000);
  });

  it('keeps arrays, skips undefined members, writes cycles and BigInts as strings', () => {
    const a: Record<string, unknown> = { list: [1, undefined, 'x'], n: 10n, skip: undefined };
    a.self = a;
    expect(safeJson(a)).toBe('{"list":[1,null,"x"],"n":"10","self":"[cycle]"}');
  });

  it('writes a Buffer as base64', () => {
    const v: unknown[] = [Buffer.from('hi')];
    v.push(v);
    expect(safeJson(v)).toBe('[{"base64":"aGk="},"[cycle]"]');
  });
});

describe('measureJson on shared objects', () => {
  it('counts an object referenced twice (as mapped events do) twice, not as a cycle', () => {
    const shared = { text: 'hello' };
    const m = measureJson({ message: shared, upstream: { payload: shared } }, { maxDepth: 8, maxBytes: 1000 });
    expect(m.exceeded).toBeUndefined();
    expect(m.depth).toBe(3);
  });
});
