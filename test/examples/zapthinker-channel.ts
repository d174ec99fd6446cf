import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';

/** The conversations the examples' tests simulate (ZapThinker chat ids). */
export const GIOVANNA = '5511999999999@s.whatsapp.net';
export const PEDRO = '5511988887777@s.whatsapp.net';

/**
 * The upstream every example's test uses: a ZapThinker simulator with one instance, and the bridge's channel
 * `wa-sales` on it.
 */
export async function startZapThinker(): Promise<{ sim: ZapThinkerSimulator; channel: Record<string, unknown> }> {
  const sim = new ZapThinkerSimulator({ instances: { sales: { token: 'sales-token' } } });
  await sim.start();
  sim.touch('sales');
  return { sim, channel: { id: 'wa-sales', provider: 'zapthinker', zapthinker: { url: sim.url, instance: 'sales', apiKey: 'sales-token', connectTimeoutMs: 2000 } } };
}

/** The text of a message event's data. */
export function textOf(data: unknown): string | undefined {
  return (data as { message?: { text?: string } } | undefined)?.message?.text;
}
