import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/** One member as the group's leader sees it at a rebalance: its id and the partitions it held until now. */
export interface StickyMember {
  memberId: string;
  previous: readonly number[];
}

/**
 * A balanced assignment of partitions `0..count-1` that moves as few as possible (pure, deterministic for the same
 * input). Every member gets ⌊count/n⌋ or ⌈count/n⌉ partitions; the ones that held more keep the larger shares. Each
 * member keeps its previous partitions up to its share (a partition two members claim, as after a zombie member, stays
 * with the first in id order); the rest go to the members below their share, in id order.
 */
export function stickyAssignment(count: number, members: readonly StickyMember[]): Map<string, number[]> {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  const out = new Map<string, number[]>(sorted.map((m) => [m.memberId, []]));
  if (!sorted.length || count <= 0) return out;
  const valid = (m: StickyMember): number[] => [...new Set(m.previous)].filter((p) => Number.isInteger(p) && p >= 0 && p < count).sort((a, b) => a - b);
  const base = Math.floor(count / sorted.length);
  const extra = count % sorted.length;
  // The larger shares go to the members that held the most (ties: id order), so they need to give up least.
  const byHeld = [...sorted].sort((a, b) => valid(b).length - valid(a).length);
  const cap = new Map(byHeld.map((m, i) => [m.memberId, base + (i < extra ? 1 : 0)]));
  const taken = new Set<number>();
  for (const m of sorted) {
    const mine = out.get(m.memberId) as number[];
    for (const p of valid(m)) {
      if (mine.length >= (cap.get(m.memberId) as number)) break;
      if (taken.has(p)) continue;
      taken.add(p);
      mine.push(p);
    }
  }
  const free = Array.from({ length: count }, (_, p) => p).filter((p) => !taken.has(p));
  for (const m of sorted) {
    const mine = out.get(m.memberId) as number[];
    while (mine.length < (cap.get(m.memberId) as number) && free.length) mine.push(free.shift() as number);
    mine.sort((a, b) => a - b);
  }
  return out;
}

/** Name of the group protocol; members that do not offer it (an older version) make the group fall back to round robin. */
export const STICKY_ASSIGNER = 'ChatbridgeSticky';

/**
 * A kafkajs partition assigner that keeps partitions where they are across rebalances (see stickyAssignment): each
 * member sends the partitions it holds (`held`) as the protocol's user data, and the leader assigns from them. With
 * kafkajs' default round robin every membership change reshuffles most partitions between live members, and each
 * moved partition is a handover (sockets reconnected); with this one a new member takes only its share, and a leaving
 * member's partitions are spread over the others.
 */
export function stickyAssigner(held: () => readonly number[]): PartitionAssigner {
  return ({ cluster }) => ({
    name: STICKY_ASSIGNER,
    version: 0,
    async assign({ members, topics }) {
      const perMember = new Map<string, Record<string, number[]>>(members.map((m) => [m.memberId, {}]));
      const previous = members.map((m) => ({ memberId: m.memberId, previous: decodeHeld(m.memberMetadata) }));
      for (const topic of topics) {
        const count = cluster.findTopicPartitionMetadata(topic).length;
        for (const [memberId, partitions] of stickyAssignment(count, previous)) (perMember.get(memberId) as Record<string, number[]>)[topic] = partitions;
      }
      return [...perMember].map(([memberId, assignment]) => ({ memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) }) }));
    },
    protocol({ topics }) {
      return { name: STICKY_ASSIGNER, metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.from(JSON.stringify({ held: [...held()] })) }) };
    },
  });
}

/** The partitions a member says it holds; none when its user data is missing or not ours. */
export function decodeHeld(metadata: Buffer): number[] {
  try {
    const { userData } = AssignerProtocol.MemberMetadata.decode(metadata) ?? {};
    if (!userData?.length) return [];
    const { held } = JSON.parse(userData.toString('utf8')) as { held?: unknown };
    return Array.isArray(held) ? held.filter((p): p is number => Number.isInteger(p)) : [];
  } catch {
    return [];
  }
}
