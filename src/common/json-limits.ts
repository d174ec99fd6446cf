/**
 * Size and depth of untrusted JSON-like values, measured without recursion, so a value nested 20,000 levels deep
 * costs a loop, not the call stack (JSON.stringify, class-transformer and most walkers recurse and overflow on it).
 */

/** Limits a value is held to. */
export interface JsonLimits {
  /** Deepest nesting of objects and arrays (a scalar is depth 0, `{}` and `[]` depth 1). */
  maxDepth: number;
  /** Largest serialized size (bytes, about what JSON.stringify would produce). */
  maxBytes: number;
}

/** What a measure found. `exceeded` names the first limit passed; the walk stops there, so figures are then lower bounds. */
export interface JsonMeasure {
  depth: number;
  bytes: number;
  exceeded?: 'depth' | 'bytes';
}

/** A part of a value measured before (an upstream frame inside the event mapped from it): counted, not walked again. */
export interface MeasuredPart {
  value: object;
  /** Its measure, which passed the limits (a complete one, not the lower bounds of an exceeded walk). */
  measure: JsonMeasure;
}

/**
 * Measures `value` iteratively: nesting depth and an estimate of its JSON size (strings and keys by their UTF-8
 * length, quotes and separators included; numbers by their printed length). Buffers count their length.
 * Stops as soon as a limit is passed (a cycle therefore ends at the depth limit). An object shared by two parents counts twice, as
 * JSON.stringify would write it twice. Where `known.value` is met, its measure is added instead of walking it again:
 * the figures are the same (the walk is deterministic), at the cost of the rest of `value` only.
 */
export function measureJson(value: unknown, limits: JsonLimits, known?: MeasuredPart): JsonMeasure {
  // Values and their depths on two parallel stacks: no object allocated per node (this runs on every frame and event).
  const values: unknown[] = [value];
  const depths: number[] = [0];
  let bytes = 0;
  let depth = 0;
  while (values.length) {
    const v = values.pop();
    const d = depths.pop() as number;
    if (typeof v === 'string') bytes += Buffer.byteLength(v, 'utf8') + 2;
    else if (typeof v === 'number') bytes += String(v).length;
    else if (typeof v === 'boolean') bytes += v ? 4 : 5;
    else if (v === null) bytes += 4;
    else if (typeof v === 'object') {
      if (known !== undefined && v === known.value) {
        const nd = d + known.measure.depth;
        if (nd > depth) depth = nd;
        if (depth > limits.maxDepth) return { depth, bytes, exceeded: 'depth' };
        bytes += known.measure.bytes;
      } else if (Buffer.isBuffer(v)) bytes += v.length;
      else {
        const nd = d + 1;
        if (nd > depth) depth = nd;
        if (depth > limits.maxDepth) return { depth, bytes, exceeded: 'depth' };
        bytes += 2;
        if (Array.isArray(v)) {
          bytes += v.length;
          for (let i = v.length - 1; i >= 0; i--) {
            values.push(v[i]);
            depths.push(nd);
          }
        } else {
          for (const k of Object.keys(v)) {
            const child = (v as Record<string, unknown>)[k];
            if (child === undefined || typeof child === 'function') continue;
            bytes += Buffer.byteLength(k, 'utf8') + 4;
            values.push(child);
            depths.push(nd);
          }
        }
      }
    }
    if (bytes > limits.maxBytes) return { depth, bytes, exceeded: 'bytes' };
  }
  return { depth, bytes };
}

/**
 * JSON text of any value, never throwing and never recursing: what JSON.stringify would give for ordinary values,
 * and for values it cannot take (too deep for the stack, cyclic, BigInt) the same walk done with an explicit stack
 * (cycles become `"[cycle]"`, BigInt a string). For dead letters, which must keep the original item whatever it is.
 */
export function safeJson(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  } catch {
    return iterativeJson(value);
  }
}

type Frame = { kind: 'value'; v: unknown } | { kind: 'text'; t: string };

function iterativeJson(root: unknown): string {
  const out: string[] = [];
  const open = new Set<object>();
  const closers = new Map<number, object>();
  const stack: Frame[] = [{ kind: 'value', v: root }];
  while (stack.length) {
    const f = stack.pop() as Frame;
    if (f.kind === 'text') {
      out.push(f.t);
      const done = closers.get(stack.length);
      if (done && (f.t === ']' || f.t === '}')) {
        open.delete(done);
        closers.delete(stack.length);
      }
      continue;
    }
    let v = f.v;
    if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function' && !Buffer.isBuffer(v)) v = (v as { toJSON(): unknown }).toJSON();
    if (Buffer.isBuffer(v)) v = { base64: v.toString('base64') };
    if (typeof v === 'bigint') v = v.toString();
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') {
      out.push('null');
      continue;
    }
    if (v === null || typeof v !== 'object') {
      out.push(JSON.stringify(v));
      continue;
    }
    if (open.has(v)) {
      out.push('"[cycle]"');
      continue;
    }
    open.add(v);
    const parts: Frame[] = [];
    if (Array.isArray(v)) {
      parts.push({ kind: 'text', t: '[' });
      v.forEach((item, i) => {
        if (i) parts.push({ kind: 'text', t: ',' });
        parts.push({ kind: 'value', v: item });
      });
      parts.push({ kind: 'text', t: ']' });
    } else {
      parts.push({ kind: 'text', t: '{' });
      let first = true;
      for (const [k, child] of Object.entries(v)) {
        if (child === undefined || typeof child === 'function' || typeof child === 'symbol') continue;
        parts.push({ kind: 'text', t: `${first ? '' : ','}${JSON.stringify(k)}:` });
        parts.push({ kind: 'value', v: child });
        first = false;
      }
      parts.push({ kind: 'text', t: '}' });
    }
    // The closer is the deepest frame pushed; when it is written the object is no longer on the path (cycle check).
    closers.set(stack.length, v);
    for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]);
  }
  return out.join('');
}
