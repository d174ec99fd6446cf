import { KeyedLanes } from './webhook.lanes';

describe('KeyedLanes (per-key FIFO)', () => {
  it('offers only the head of each lane, oldest ready lane first', () => {
    const lanes = new KeyedLanes<string>();
    lanes.push('a', 'a1');
    lanes.push('a', 'a2');
    lanes.push('b', 'b1');
    expect(lanes.size).toBe(3);
    expect(lanes.take()).toEqual({ key: 'a', item: 'a1' });
    expect(lanes.take()).toEqual({ key: 'b', item: 'b1' });
    // a1 and b1 are out: nothing else may start, a2 waits behind a1.
    expect(lanes.hasReady()).toBe(false);
    expect(lanes.take()).toBeUndefined();
    // Both lanes stay busy until given back: b's ends when done, a's then offers a2.
    lanes.done('b');
    expect(lanes.take()).toBeUndefined();
    lanes.done('a');
    expect(lanes.take()).toEqual({ key: 'a', item: 'a2' });
  });

  it('makes the next item ready when the head is done, and ends the lane when empty', () => {
    const lanes = new KeyedLanes<string>();
    lanes.push('a', 'a1');
    lanes.push('a', 'a2');
    lanes.take();
    lanes.done('a');
    expect(lanes.take()).toEqual({ key: 'a', item: 'a2' });
    lanes.done('a');
    expect(lanes.size).toBe(0);
    // The lane ended: a new item is offered at once.
    lanes.push('a', 'a3');
    expect(lanes.take()).toEqual({ key: 'a', item: 'a3' });
  });

  it('gives a retried head back to the end of the ready order, keeping its place in its lane', () => {
    const lanes = new KeyedLanes<string>();
    lanes.push('a', 'a1');
    lanes.push('a', 'a2');
    lanes.push('b', 'b1');
    lanes.take(); // a1 fails
    lanes.requeue('a');
    expect(lanes.take()).toEqual({ key: 'b', item: 'b1' });
    expect(lanes.take()).toEqual({ key: 'a', item: 'a1' });
  });

  it('drains every item lane by lane, in order', () => {
    const lanes = new KeyedLanes<string>();
    for (const [k, v] of [['a', 'a1'], ['b', 'b1'], ['a', 'a2']]) lanes.push(k, v);
    lanes.take();
    expect(lanes.drain()).toEqual(['a1', 'a2', 'b1']);
    expect(lanes.size).toBe(0);
    expect(lanes.hasReady()).toBe(false);
  });
});
