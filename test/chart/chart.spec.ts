import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { IPersistentVolumeClaim, IService } from 'kubernetes-models/v1';
import { CI_VALUES, Helm, NAMESPACE, RELEASE, configFileOf, deploymentOf, only, schemaProblems, secretEnvOf, type Manifest } from './helm';

/** The Helm chart, rendered by the real helm binary and checked against the Kubernetes schemas. */
describe('Helm chart helm/chatbridge', () => {
  let helm: Helm;
  const rendered = new Map<string, Manifest[]>();
  const render = (file: string) => rendered.get(file)!;

  beforeAll(async () => {
    helm = await Helm.get();
    for (const file of CI_VALUES) rendered.set(file, await helm.template({ values: [file] }));
  }, 180_000);

  it('has the four CI value sets the chart is tested with', () => {
    expect(CI_VALUES).toEqual(['default-values.yaml', 'existing-secret-values.yaml', 'hpa-values.yaml', 'kafka-cluster-values.yaml']);
  });

  it('passes helm lint --strict with its defaults and with every CI value set', async () => {
    for (const file of [undefined, ...CI_VALUES]) {
      expect(await helm.lint({ values: file ? [file] : [] })).toContain('0 chart(s) failed');
    }
  });

  it.each(CI_VALUES)('%s: every object is valid against its Kubernetes schema, namespaced, named and labelled by the release', (file) => {
    const ms = render(file);
    for (const m of ms) {
      if (m.kind === 'ServiceMonitor') {
        // A CRD (Prometheus Operator): no schema in kubernetes-models; the fields it needs are checked below.
        expect(m.apiVersion).toBe('monitoring.coreos.com/v1');
      } else {
        expect(schemaProblems(m)).toEqual([]);
      }
      expect(m.metadata).toMatchObject({
        name: 'chatbridge',
        namespace: NAMESPACE,
        labels: expect.objectContaining({
          'app.kubernetes.io/name': 'chatbridge', 'app.kubernetes.io/instance': RELEASE, 'app.kubernetes.io/managed-by': 'Helm',
          'app.kubernetes.io/version': '0.1.0', 'helm.sh/chart': 'chatbridge-0.1.0',
        }),
      });
    }
    expect(ms.map((m) => m.kind)).toEqual(expect.arrayContaining(['Deployment', 'Service', 'ConfigMap', 'ServiceAccount']));
  });

  it('runs the container hardened: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
    const pod = deploymentOf(render('default-values.yaml')).spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers[0].securityContext).toEqual(expect.objectContaining({
      runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    }));
    // With a read-only root, the only writable places are the volumes: /data (state, dead letters) and /tmp.
    expect(pod.containers[0].volumeMounts).toEqual(expect.arrayContaining([
      { name: 'config', mountPath: '/etc/chatbridge', readOnly: true }, { name: 'data', mountPath: '/data' }, { name: 'tmp', mountPath: '/tmp' },
    ]));
    expect(pod.volumes).toEqual(expect.arrayContaining([
      { name: 'config', configMap: { name: 'chatbridge' } }, { name: 'data', emptyDir: { sizeLimit: '1Gi' } }, { name: 'tmp', emptyDir: {} },
    ]));
  });

  it('probes /healthz (liveness, startup) and /readyz (readiness) on the http port the Service targets', () => {
    const ms = render('default-values.yaml');
    const c = deploymentOf(ms).spec!.template.spec!.containers[0];
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(only<IService>(ms, 'Service').spec?.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
    expect(c.lifecycle?.preStop?.exec?.command).toEqual(['sleep', '5']);
    expect(c.env).toEqual(expect.arrayContaining([
      { name: 'PORT', value: '8080' }, { name: 'CHATBRIDGE_CONFIG', value: '/etc/chatbridge/chatbridge.yaml' },
      { name: 'CHATBRIDGE_REPLICA', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ]));
  });

  it('puts the secrets in the Secret, read through envFrom, and none of their values in the ConfigMap', () => {
    const ms = render('kafka-cluster-values.yaml');
    const secrets = secretEnvOf(ms);
    expect(secrets).toMatchObject({ CHATBRIDGE_API_TOKENS: 'ci-token-cluster', KAFKA_PASSWORD: 'ci-kafka-password' });
    const configFile = configFileOf(ms);
    expect(configFile).toContain('${KAFKA_PASSWORD}');
    for (const value of Object.values(secrets)) expect(configFile).not.toContain(value);
    const pod = deploymentOf(ms).spec!.template;
    expect(pod.spec!.containers[0].envFrom).toEqual([{ secretRef: { name: 'chatbridge' } }]);
    expect(pod.metadata?.annotations?.['checksum/secret']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('with existingSecret renders no Secret and reads the environment from the named one', () => {
    const ms = render('existing-secret-values.yaml');
    expect(ms.filter((m) => m.kind === 'Secret')).toEqual([]);
    const pod = deploymentOf(ms).spec!.template;
    expect(pod.spec!.containers[0].envFrom).toEqual([{ secretRef: { name: 'chatbridge-managed' } }]);
    expect(pod.metadata?.annotations?.['checksum/secret']).toBeUndefined();
  });

  it('with autoscaling leaves replicas to the HPA and guards them with a PodDisruptionBudget', () => {
    const ms = render('hpa-values.yaml');
    expect(deploymentOf(ms).spec).not.toHaveProperty('replicas');
    expect(only<IHorizontalPodAutoscaler>(ms, 'HorizontalPodAutoscaler').spec).toMatchObject({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'chatbridge' }, minReplicas: 2, maxReplicas: 5,
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } },
        { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } },
      ],
    });
    expect(only<IPodDisruptionBudget>(ms, 'PodDisruptionBudget').spec).toEqual({
      maxUnavailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': 'chatbridge', 'app.kubernetes.io/instance': RELEASE } },
    });
  });

  it('renders a PodDisruptionBudget for fixed replicas > 1 only, and no HPA unless enabled', () => {
    const cluster = render('kafka-cluster-values.yaml');
    expect(deploymentOf(cluster).spec?.replicas).toBe(3);
    expect(only<IPodDisruptionBudget>(cluster, 'PodDisruptionBudget').spec?.maxUnavailable).toBe(1);
    const single = render('default-values.yaml');
    expect(deploymentOf(single).spec?.replicas).toBe(1);
    expect(single.map((m) => m.kind)).not.toEqual(expect.arrayContaining(['PodDisruptionBudget']));
    expect(single.map((m) => m.kind)).not.toEqual(expect.arrayContaining(['HorizontalPodAutoscaler']));
  });

  it('keeps /data on an emptyDir by default, and on a PersistentVolumeClaim (created, or an existing one) with persistence', async () => {
    const plain = render('default-values.yaml');
    expect(plain.map((m) => m.kind)).not.toContain('PersistentVolumeClaim');
    expect(deploymentOf(plain).spec!.template.spec!.volumes).toContainEqual({ name: 'data', emptyDir: { sizeLimit: '1Gi' } });

    const ms = await helm.template({ set: { 'persistence.enabled': true, 'persistence.size': '5Gi', 'persistence.storageClassName': 'fast' } });
    const pvc = only<IPersistentVolumeClaim>(ms, 'PersistentVolumeClaim');
    expect(schemaProblems(pvc as unknown as Manifest)).toEqual([]);
    expect(pvc.metadata).toMatchObject({ name: 'chatbridge-data', annotations: { 'helm.sh/resource-policy': 'keep' } });
    expect(pvc.spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } }, storageClassName: 'fast' });
    expect(deploymentOf(ms).spec!.template.spec!.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'chatbridge-data' } });

    const existing = await helm.template({ set: { 'persistence.enabled': true, 'persistence.existingClaim': 'bridge-dl' } });
    expect(existing.map((m) => m.kind)).not.toContain('PersistentVolumeClaim');
    expect(deploymentOf(existing).spec!.template.spec!.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'bridge-dl' } });
  });

  it('refuses persistence for several replicas on a ReadWriteOnce claim, or with one dead-letter file for all of them', async () => {
    const rwo = await helm.templateError({ values: ['kafka-cluster-values.yaml'], set: { 'persistence.enabled': true } });
    expect(rwo).toContain('set persistence.accessModes to [ReadWriteMany]');
    const shared = await helm.templateError({ values: ['kafka-cluster-values.yaml'], set: { 'persistence.enabled': true, 'persistence.accessModes': ['ReadWriteMany'] } });
    expect(shared).toContain('give each replica its own dead-letter file');
    const ok = await helm.template({
      values: ['kafka-cluster-values.yaml'],
      set: { 'persistence.enabled': true, 'persistence.accessModes': ['ReadWriteMany'], 'config.deadLetter.file': '/data/dead-letter-${CHATBRIDGE_REPLICA}.jsonl' },
    });
    expect(only<IPersistentVolumeClaim>(ok, 'PersistentVolumeClaim').spec?.accessModes).toEqual(['ReadWriteMany']);
    expect(configFileOf(ok)).toContain('/data/dead-letter-${CHATBRIDGE_REPLICA}.jsonl');
  });

  it('scrapes /metrics with a ServiceMonitor and limits ingress to port 8080 from the given peers, egress open', () => {
    const ms = render('existing-secret-values.yaml');
    const monitor = only(ms, 'ServiceMonitor');
    expect(monitor.metadata.labels).toMatchObject({ release: 'prometheus' });
    expect(monitor.spec).toEqual({
      selector: { matchLabels: { 'app.kubernetes.io/name': 'chatbridge', 'app.kubernetes.io/instance': RELEASE } },
      namespaceSelector: { matchNames: [NAMESPACE] },
      endpoints: [{ port: 'http', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }],
    });
    const policy = only<INetworkPolicy>(ms, 'NetworkPolicy').spec!;
    expect(policy.policyTypes).toEqual(['Ingress']);
    expect(policy.ingress).toEqual([{
      ports: [{ port: 8080, protocol: 'TCP' }],
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }, { podSelector: { matchLabels: { app: 'crm' } } }],
    }]);
    expect(render('default-values.yaml').map((m) => m.kind)).not.toEqual(expect.arrayContaining(['ServiceMonitor', 'NetworkPolicy']));
  });

  it('applies image, pull secrets, extra env, pod labels/annotations and spread constraints from the values', () => {
    const pod = deploymentOf(render('kafka-cluster-values.yaml')).spec!.template;
    const c = pod.spec!.containers[0];
    expect(c).toMatchObject({ image: 'registry.example.com/chatbridge:0.1.0', imagePullPolicy: 'Always' });
    expect(c.env).toEqual(expect.arrayContaining([{ name: 'NODE_OPTIONS', value: '--max-old-space-size=384' }, { name: 'LOG_LEVEL', value: 'debug' }]));
    expect(pod.spec?.imagePullSecrets).toEqual([{ name: 'registry-credentials' }]);
    expect(pod.metadata?.labels).toMatchObject({ tier: 'integration', 'app.kubernetes.io/name': 'chatbridge' });
    expect(pod.metadata?.annotations).toMatchObject({ 'example.com/team': 'chat', 'checksum/config': expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(pod.spec?.topologySpreadConstraints).toEqual([expect.objectContaining({ topologyKey: 'kubernetes.io/hostname', maxSkew: 1 })]);
    expect(pod.spec?.terminationGracePeriodSeconds).toBe(60);
  });

  it('names everything after fullnameOverride, and the default tag is the chart appVersion', async () => {
    const ms = await helm.template({ values: ['default-values.yaml'], set: { fullnameOverride: 'bridge' } });
    expect(new Set(ms.map((m) => m.metadata.name))).toEqual(new Set(['bridge']));
    const pod = deploymentOf(ms).spec!.template.spec!;
    expect(pod.serviceAccountName).toBe('bridge');
    expect(pod.containers[0].image).toBe('chatbridge:0.1.0');
    expect(pod.containers[0].envFrom).toEqual([{ secretRef: { name: 'bridge' } }]);
  });
});
