import { AssignerProtocol } from 'kafkajs';
import { decodeHeld, stickyAssigner, stickyAssignment, STICKY_ASSIGNER } from './sticky-assigner';

const members = (...prev: Array<[string, number[]]>) => prev.map(([memberId, previous]) => ({ memberId, previous }));
/** Partitions that went from one member that stayed to another that stayed (a join or a leave needs none of those). */
const moved = (before: Map<string, number[]>, after: Map<string, number[]>): number => {
  const owner = new Map<number, string>();
  for (const [m, ps] of before) for (const p of ps) owner.set(p, m);
  let n = 0;
  for (const [m, ps] of after) for (const p of ps) if (before.has(m) && owner.has(p) && after.has(owner.get(p)!) && owner.get(p) !== m) n++;
  return n;
};
const balanced = (a: Map<string, number[]>, count: number): void => {
  const all = [...a.values()].flat().sort((x, y) => x - y);
  expect(all).toEqual(Array.from({ length: count }, (_, i) => i)); // every partition exactly once
  const sizes = [...a.values()].map((ps) => ps.length);
  expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
};

describe('stickyAssignment: balanced, and moving as few partitions as possible', () => {
  it('a first assignment (nobody held anything) is balanced', () => {
    const a = stickyAssignment(12, members(['m-b', []], ['m-a', []], ['m-c', []]));
    balanced(a, 12);
    expect(a.get('m-a')).toEqual([0, 1, 2, 3]);
  });

  it('a member joining takes only its share; the others keep the rest', () => {
    const before = stickyAssignment(12, members(['m-a', []], ['m-b', []], ['m-c', []]));
    const after = stickyAssignment(12, members(['m-a', before.get('m-a')!], ['m-b', before.get('m-b')!], ['m-c', before.get('m-c')!], ['m-0', []]));
    balanced(after, 12);
    expect(after.get('m-0')).toHaveLength(3);
    expect(moved(before, after)).toBe(0); // nothing moved between the members that stayed
    for (const m of ['m-a', 'm-b', 'm-c']) expect(after.get(m)!.every((p) => before.get(m)!.includes(p))).toBe(true);
  });

  it('a member leaving: its partitions are spread, the others keep theirs', () => {
    const before = stickyAssignment(12, members(['m-a', []], ['m-b', []], ['m-c', []]));
    const after = stickyAssignment(12, members(['m-a', before.get('m-a')!], ['m-c', before.get('m-c')!]));
    balanced(after, 12);
    for (const m of ['m-a', 'm-c']) expect(before.get(m)!.every((p) => after.get(m)!.includes(p))).toBe(true);
    expect(moved(before, after)).toBe(0);
  });

  it('6 partitions, 3 → 4 members: the newcomer takes one, nothing else moves', () => {
    const before = stickyAssignment(6, members(['m-a', [0, 1]], ['m-b', [2, 3]], ['m-c', [4, 5]]));
    const after = stickyAssignment(6, members(['m-a', [0, 1]], ['m-b', [2, 3]], ['m-c', [4, 5]], ['m-ab', []]));
    balanced(after, 6);
    expect(moved(before, after)).toBe(0);
    expect(after.get('m-ab')).toHaveLength(1);
  });

  it('claims of the same partition by two members (a zombie) and unknown partitions are resolved', () => {
    const a = stickyAssignment(4, members(['m-a', [0, 1, 9, -1]], ['m-b', [1, 2]]));
    balanced(a, 4);
    expect(a.get('m-a')).toEqual([0, 1]);
    expect(a.get('m-b')).toEqual([2, 3]);
    expect(stickyAssignment(3, [])).toEqual(new Map());
    expect(stickyAssignment(2, members(['m-a', []], ['m-b', []], ['m-c', []])).get('m-c')).toEqual([]);
  });
});

describe('stickyAssigner: the kafkajs group protocol', () => {
  it('sends the held partitions as user data and assigns from every member\'s', async () => {
    const cluster = { findTopicPartitionMetadata: () => Array.from({ length: 6 }, (_, partitionId) => ({ partitionId })) };
    const a = stickyAssigner(() => [0, 1, 2])({ cluster } as never);
    const b = stickyAssigner(() => [3, 4, 5])({ cluster } as never);
    const c = stickyAssigner(() => [])({ cluster } as never);
    expect(a.name).toBe(STICKY_ASSIGNER);
    const meta = (x: typeof a) => x.protocol({ topics: ['cmds'] }).metadata;
    expect(decodeHeld(meta(a))).toEqual([0, 1, 2]);
    expect(decodeHeld(Buffer.from('not ours'))).toEqual([]);
    const result = await a.assign({ topics: ['cmds'], members: [{ memberId: 'a', memberMetadata: meta(a) }, { memberId: 'b', memberMetadata: meta(b) }, { memberId: 'c', memberMetadata: meta(c) }] });
    const got = Object.fromEntries(result.map((r) => [r.memberId, AssignerProtocol.MemberAssignment.decode(r.memberAssignment)?.assignment.cmds]));
    expect(got).toEqual({ a: [0, 1], b: [3, 4], c: [2, 5] });
  });
});
