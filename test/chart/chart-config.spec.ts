import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig, type AppConfig } from '../../src/config/config.loader';
import { ClusterConfig, FileConfig } from '../../src/config/config.schema';
import { CHART_DIR, CI_VALUES, Helm, configFileOf, deploymentOf, secretEnvOf, type Manifest } from './helm';

/** The environment the kubelet gives the container: envFrom Secrets first, then env (which wins). */
function podEnv(ms: Manifest[], managedSecrets: Record<string, Record<string, string>> = {}): NodeJS.ProcessEnv {
  const c = deploymentOf(ms).spec!.template.spec!.containers[0];
  const env: NodeJS.ProcessEnv = {};
  for (const from of c.envFrom ?? []) {
    const name = from.secretRef!.name!;
    const rendered = ms.some((m) => m.kind === 'Secret' && m.metadata.name === name);
    const source = rendered ? secretEnvOf(ms) : managedSecrets[name];
    if (!source) throw new Error(`envFrom names Secret ${name}, which is neither rendered nor given`);
    Object.assign(env, source);
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = 'chatbridge-7d9f8b6c5-x2x4q';
  }
  return env;
}

/** The bridge's own loader on the rendered file, as `node dist/main.js` would run it in the pod. */
function loadRendered(ms: Manifest[], managedSecrets?: Record<string, Record<string, string>>): { config: AppConfig; warnings: string[] } {
  return loadConfig({ raw: parseYaml(configFileOf(ms)), env: podEnv(ms, managedSecrets) });
}

/** The rendered config file and environment, checked with the real config loader; render-time refusals. */
describe('Helm chart: the config the pod gets', () => {
  let helm: Helm;
  beforeAll(async () => {
    helm = await Helm.get();
  }, 180_000);

  const MANAGED = { 'chatbridge-managed': { CHATBRIDGE_API_TOKENS: 'managed-token-0123456789', SMARTSUPP_KEY: 'managed-smartsupp-key' } };
  const EXPECTED: Record<string, { channels: string[]; kafka: boolean; webhooks: string[]; tokens: string[] }> = {
    'default-values.yaml': { channels: ['wa-sales'], kafka: false, webhooks: ['crm'], tokens: ['ci-token-one-0123456789', 'ci-token-two-0123456789'] },
    'existing-secret-values.yaml': { channels: ['site-chat'], kafka: false, webhooks: [], tokens: ['managed-token-0123456789'] },
    'hpa-values.yaml': { channels: ['support'], kafka: true, webhooks: [], tokens: ['ci-token-hpa-0123456789'] },
    'kafka-cluster-values.yaml': { channels: ['hub', 'bot-eu'], kafka: true, webhooks: ['crm'], tokens: ['ci-token-cluster'] },
  };

  it.each(CI_VALUES)('%s: chatbridge.yaml and the pod environment load with no problem and no warning', async (file) => {
    const ms = await helm.template({ values: [file] });
    const { config, warnings } = loadRendered(ms, MANAGED);
    expect(warnings).toEqual([]);
    const expected = EXPECTED[file];
    expect(config.channels.map((c) => c.id)).toEqual(expected.channels);
    expect(Boolean(config.kafka)).toBe(expected.kafka);
    expect(config.webhooks.map((w) => w.id)).toEqual(expected.webhooks);
    expect(config.apiTokens).toEqual(expected.tokens);
    expect(config.port).toBe(8080);
    // With Kafka the replicas share the channels (cluster mode); without, the bridge would refuse cluster mode.
    expect(config.cluster.enabled).toBe(expected.kafka);
    // readOnlyRootFilesystem: everything the bridge writes must sit on a writable mount.
    const writable = deploymentOf(ms).spec!.template.spec!.containers[0].volumeMounts!.filter((v) => !v.readOnly).map((v) => `${v.mountPath}/`);
    for (const path of [`${config.stateDir}/`, config.deadLetter.file]) {
      expect(writable.some((mount) => path.startsWith(mount))).toBe(true);
    }
  });

  it('fills ${VAR} references from the Secret: the SASL password reaches the Kafka config', async () => {
    const { config } = loadRendered(await helm.template({ values: ['kafka-cluster-values.yaml'] }));
    expect(config.kafka?.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'bridge', password: 'ci-kafka-password' });
    expect(config.shutdownGraceMs).toBe(30_000);
  });

  it('rolls the pods when the config or a secret changes, and only then', async () => {
    const annotations = async (set: Record<string, unknown>) =>
      deploymentOf(await helm.template({ values: ['default-values.yaml'], set })).spec!.template.metadata!.annotations!;
    const base = await annotations({});
    const otherConfig = await annotations({ 'config.shutdownGraceMs': 15_000 });
    expect(otherConfig['checksum/config']).not.toBe(base['checksum/config']);
    expect(otherConfig['checksum/secret']).toBe(base['checksum/secret']);
    const otherSecret = await annotations({ 'secrets.ZAP_KEY': 'rotated-zapthinker-key' });
    expect(otherSecret['checksum/secret']).not.toBe(base['checksum/secret']);
    expect(otherSecret['checksum/config']).toBe(base['checksum/config']);
    expect(await annotations({ podLabels: { x: 'y' } })).toEqual(base);
  });

  it('refuses several replicas without Kafka or without cluster mode: each replica would connect every channel', async () => {
    const noKafka = 'several replicas (replicaCount > 1 or autoscaling.enabled) need Kafka: set config.kafka (brokers)';
    expect(await helm.templateError({ values: ['default-values.yaml'], set: { replicaCount: 3 } })).toContain(noKafka);
    expect(await helm.templateError({ values: ['default-values.yaml'], set: { 'autoscaling.enabled': true } })).toContain(noKafka);
    expect(await helm.templateError({ values: ['kafka-cluster-values.yaml'], set: { 'config.cluster.enabled': false } }))
      .toContain('need cluster mode: remove config.cluster.enabled: false');
    // One replica needs neither, and an explicit cluster.enabled wins over the chart's default.
    const single = await helm.template({ values: ['kafka-cluster-values.yaml'], set: { replicaCount: 1, 'config.cluster.enabled': false } });
    expect(deploymentOf(single).spec?.replicas).toBe(1);
    expect(loadRendered(single).config.cluster.enabled).toBe(false);
  });

  it('refuses a termination grace period shorter than preStop + shutdownGraceMs + 5 s', async () => {
    // Defaults: preStop 5 s + shutdownGraceMs 20 s + 5 s = 30 s.
    expect(await helm.templateError({ values: ['default-values.yaml'], set: { terminationGracePeriodSeconds: 30 } }))
      .toContain('terminationGracePeriodSeconds (30) must be more than preStopSleepSeconds (5) + config.shutdownGraceMs/1000 (20) + 5 s');
    expect(deploymentOf(await helm.template({ values: ['default-values.yaml'], set: { terminationGracePeriodSeconds: 31 } })).spec?.template.spec?.terminationGracePeriodSeconds).toBe(31);
    expect(await helm.templateError({ values: ['default-values.yaml'], set: { 'config.shutdownGraceMs': 35_500 } }))
      .toContain('config.shutdownGraceMs/1000 (35.5)');
    // Without the preStop sleep the same period suffices, and no hook is rendered.
    const noPreStop = deploymentOf(await helm.template({ values: ['default-values.yaml'], set: { terminationGracePeriodSeconds: 26, preStopSleepSeconds: 0 } }));
    expect(noPreStop.spec?.template.spec?.containers[0].lifecycle).toBeUndefined();
  });

  it('lets through exactly the config keys the bridge knows (values.schema.json follows config.schema.ts)', () => {
    type Props = { properties: Record<string, Props> };
    const config = (JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Props).properties.config;
    expect(Object.keys(config.properties).sort()).toEqual(Object.keys(new FileConfig()).sort());
    expect(Object.keys(config.properties.cluster.properties).sort()).toEqual(Object.keys(new ClusterConfig()).sort());
  });

  it('rejects values the schema does not allow, naming the key', async () => {
    expect(await helm.templateError({ set: { 'config.kafak': { brokers: ['k:9092'] } } })).toContain('Additional property kafak is not allowed');
    expect(await helm.templateError({ set: { replicaCount: 'three' } })).toMatch(/replicaCount: Invalid type. Expected: integer/);
    expect(await helm.templateError({ set: { secrets: { 'NOT-AN-ENV-NAME': 'x' } } })).toContain('secrets');
  });
});
