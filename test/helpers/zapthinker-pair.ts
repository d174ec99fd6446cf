import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';

/** The ZapThinker simulator with two instances, `sales` and `support` (keys `tok-<instance>`), started and known. */
export async function startZapThinkerPair(): Promise<ZapThinkerSimulator> {
  const sim = new ZapThinkerSimulator({ instances: { sales: { token: 'tok-sales' }, support: { token: 'tok-support' } } });
  await sim.start();
  sim.touch('sales');
  sim.touch('support');
  return sim;
}

/** The raw config of channel `wa-<instance>` on that simulator; `extra` adds channel keys (mode, inbound, …). */
export function zapChannel(sim: ZapThinkerSimulator, instance: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: `wa-${instance}`, provider: 'zapthinker', ...extra, zapthinker: { url: sim.url, instance, apiKey: `tok-${instance}`, connectTimeoutMs: 2000 } };
}
