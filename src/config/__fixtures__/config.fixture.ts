import { ConfigError, loadConfig, type LoadConfigInput } from '../config.loader';

/* What the loadConfig specs share (config.loader.spec.ts and the config.*.spec.ts next to it). */

/** A value that must never appear in an error message. */
export const SECRET = 'S3CR3T-do-not-leak-91f2';

export const zap = (extra: Record<string, unknown> = {}) => ({
  url: 'https://api.zapthinker.com',
  instance: 'sales',
  apiKey: '${ZAP_KEY}',
  ...extra,
});

/** Runs loadConfig expecting a ConfigError; returns it. */
export function configError(input: LoadConfigInput): ConfigError {
  try {
    loadConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('loadConfig did not throw');
}
