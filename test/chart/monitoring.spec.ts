import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IConfigMap } from 'kubernetes-models/v1';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1';
import { startTestBridge } from '../helpers/bridge-harness';
import { CHART_DIR, Helm, NAMESPACE, RELEASE, only, schemaProblems, type Manifest } from './helm';

/** The series names a scrape of the bridge's /metrics offers to PromQL (a histogram as its _bucket, _sum, _count). */
function queryableNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
    else names.add(name);
  }
  return names;
}

/** PromQL words that are not series names (the grouping clauses are removed with their label lists). */
const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset']);

/**
 * The series names a PromQL expression selects: what is left once strings, label matchers, ranges, grouping label
 * lists, numbers and Grafana variables are taken out, and functions (a name before a parenthesis) are skipped.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/(?<![\w:])\d[\w.]*/g, ' ');
  return [...bare.matchAll(/([a-zA-Z_:][\w:]*)(\s*\()?/g)].filter((m) => !m[2] && !PROMQL_KEYWORDS.has(m[1])).map((m) => m[1]);
}

/** Labels an alert's annotations read (`$labels.x`): they must survive the expression's outer aggregation. */
const annotationLabels = (text: string) => [...text.matchAll(/\$labels\.(\w+)/g)].map((m) => m[1]);
const outerGrouping = (expr: string) => /\bby \(([^)]*)\)/.exec(expr)?.[1].split(',').map((l) => l.trim()) ?? [];

interface Alert {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: { summary: string; description: string };
}
const alertsOf = (ms: Manifest[]): Alert[] => (only(ms, 'PrometheusRule').spec as { groups: Array<{ rules: Alert[] }> }).groups.flatMap((g) => g.rules);

interface Dashboard {
  uid: string;
  templating: { list: Array<{ name: string; type: string; query: string }> };
  panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
}

/** Every PromQL query of a Grafana dashboard, its hidden constants (the histogram names) filled in. */
function dashboardQueries(d: Dashboard): string[] {
  const constants = new Map(d.templating.list.filter((v) => v.type === 'constant').map((v) => [v.name, v.query]));
  const fill = (q: string) => q.replace(/\$\{(\w+)\}/g, (ref, name: string) => constants.get(name) ?? ref);
  const variableQueries = d.templating.list.filter((v) => v.type === 'query').map((v) => /^label_values\((.+), *\w+\)$/.exec(v.query)![1]);
  return [...d.panels.flatMap((p) => p.targets ?? []).map((t) => fill(t.expr)), ...variableQueries];
}

const EVERYTHING_ON = { 'ingress.enabled': true, 'monitoring.prometheusRule.enabled': true, 'monitoring.dashboard.enabled': true, 'serviceMonitor.enabled': true };

/** The optional Ingress, PrometheusRule and Grafana dashboard, checked against the metrics a running bridge exposes. */
describe('Helm chart: ingress, alerts and dashboard', () => {
  let helm: Helm;
  beforeAll(async () => {
    helm = await Helm.get();
  }, 180_000);

  // What Prometheus would scrape from a running bridge: every metric it registers is listed (# TYPE) before its first sample.
  let scraped: Promise<Set<string>> | undefined;
  const exposedMetrics = () => (scraped ??= (async () => {
    const bridge = await startTestBridge({ channels: [] });
    try {
      return queryableNames((await bridge.get('/metrics', null)).text);
    } finally {
      await bridge.close();
    }
  })());

  it('renders none of them by default', async () => {
    const ms = await helm.template();
    expect(ms.map((m) => m.kind)).not.toEqual(expect.arrayContaining(['Ingress']));
    expect(ms.map((m) => m.kind)).not.toEqual(expect.arrayContaining(['PrometheusRule']));
    expect(ms.filter((m) => m.kind === 'ConfigMap').map((m) => m.metadata.name)).toEqual(['chatbridge']);
  });

  it('routes /v1/inbound through the Ingress (webhook mode), and the HTTP and socket.io APIs only when asked', async () => {
    const ms = await helm.template({
      set: {
        'ingress.enabled': true, 'ingress.className': 'nginx', 'ingress.hosts': ['chat.example.com', 'hooks.example.com'],
        'ingress.tls': [{ secretName: 'chatbridge-tls', hosts: ['chat.example.com'] }], 'ingress.annotations': { 'cert-manager.io/cluster-issuer': 'letsencrypt' },
      },
    });
    const ingress = only<IIngress>(ms, 'Ingress');
    expect(schemaProblems(ingress as unknown as Manifest)).toEqual([]);
    expect(ingress.metadata).toMatchObject({ name: 'chatbridge', namespace: NAMESPACE, annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' } });
    const backend = { service: { name: 'chatbridge', port: { name: 'http' } } };
    expect(ingress.spec).toEqual({
      ingressClassName: 'nginx',
      tls: [{ secretName: 'chatbridge-tls', hosts: ['chat.example.com'] }],
      rules: ['chat.example.com', 'hooks.example.com'].map((host) => ({ host, http: { paths: [{ path: '/v1/inbound', pathType: 'Prefix', backend }] } })),
    });

    const api = only<IIngress>(await helm.template({ set: { 'ingress.enabled': true, 'ingress.api': true } }), 'Ingress');
    expect(schemaProblems(api as unknown as Manifest)).toEqual([]);
    // No host: one rule for any host; never /healthz, /readyz or /metrics.
    expect(api.spec).toEqual({ rules: [{ http: { paths: ['/v1', '/socket.io'].map((path) => ({ path, pathType: 'Prefix', backend })) } }] });
  });

  it('alerts on a sink down, a disabled webhook endpoint, channels failing, dead letters, webhook lag and failing commands, on metrics the bridge exposes', async () => {
    const ms = await helm.template({ set: { 'monitoring.prometheusRule.enabled': true, 'monitoring.prometheusRule.labels': { release: 'prometheus' } } });
    const rule = only(ms, 'PrometheusRule');
    expect(rule).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', metadata: { name: 'chatbridge', namespace: NAMESPACE, labels: { release: 'prometheus', 'app.kubernetes.io/instance': RELEASE } } });
    const alerts = alertsOf(ms);
    const exposed = await exposedMetrics();
    expect(alerts.map((a) => a.alert)).toEqual([
      'ChatbridgeSinkDown', 'ChatbridgeWebhookEndpointDisabled', 'ChatbridgeChannelAuthFailed', 'ChatbridgeChannelDown',
      'ChatbridgeDeadLetters', 'ChatbridgeWebhookConsumerLag', 'ChatbridgeCommandsFailing',
    ]);
    for (const a of alerts) {
      expect({ alert: a.alert, severity: a.labels.severity }).toEqual({ alert: a.alert, severity: expect.stringMatching(/^(critical|warning)$/) });
      expect(a.annotations.summary.length).toBeGreaterThan(10);
      expect(a.annotations.description.length).toBeGreaterThan(30);
      expect(a.for).toMatch(/^\d+m$/);
      const names = metricNames(a.expr);
      expect(names.length).toBeGreaterThan(0);
      expect({ alert: a.alert, unknown: names.filter((n) => !exposed.has(n)) }).toEqual({ alert: a.alert, unknown: [] });
      // Only this release's series: the namespace and the job of the chart's ServiceMonitor (the Service's name).
      for (const matchers of a.expr.match(/\{[^}]*\}/g) ?? []) expect(matchers).toContain('namespace="chat", job="chatbridge"');
      const kept = outerGrouping(a.expr);
      for (const label of annotationLabels(`${a.annotations.summary} ${a.annotations.description}`)) expect({ alert: a.alert, label, kept: kept.includes(label) }).toEqual({ alert: a.alert, label, kept: true });
    }
    const byName = new Map(alerts.map((a) => [a.alert, a]));
    expect(byName.get('ChatbridgeChannelAuthFailed')).toMatchObject({ for: '10m', labels: { severity: 'critical' } });
    expect(byName.get('ChatbridgeChannelAuthFailed')!.expr).toContain('state="auth_failed"');
    // `disconnected` is the state of a channel a replica does not run (another replica holds it), `inbound` the one of
    // a channel in webhook mode: neither is alerted on.
    expect(byName.get('ChatbridgeChannelDown')!.expr).toContain('state=~"connecting|reconnecting"');
    // Alerts read the current name, not the deprecated chatbridge_commands_total.
    for (const a of alerts) expect(metricNames(a.expr)).not.toContain('chatbridge_commands_total');
    expect(byName.get('ChatbridgeWebhookConsumerLag')!.expr).toMatch(/ > 1000$/);
  });

  it('takes each alert\'s duration, severity, thresholds and switch, extra alert labels and the series selector from the values', async () => {
    const alerts = alertsOf(await helm.template({
      set: {
        'monitoring.prometheusRule.enabled': true,
        'monitoring.prometheusRule.selector': 'cluster="eu-1", app="bridge"',
        'monitoring.prometheusRule.alertLabels': { team: 'chat' },
        'monitoring.prometheusRule.alerts.channelDown': { for: '3m', severity: 'critical' },
        'monitoring.prometheusRule.alerts.commandsFailing': { window: '30m', threshold: 0.25 },
        'monitoring.prometheusRule.alerts.deadLetters.threshold': 50,
        'monitoring.prometheusRule.alerts.sinkDown.enabled': false,
      },
    }));
    const byName = new Map(alerts.map((a) => [a.alert, a]));
    expect(byName.has('ChatbridgeSinkDown')).toBe(false);
    expect(byName.get('ChatbridgeChannelDown')).toMatchObject({ for: '3m', labels: { severity: 'critical', team: 'chat' } });
    expect(byName.get('ChatbridgeCommandsFailing')!.expr).toMatch(/\[30m\].*\[30m\].* > 0\.25$/);
    expect(byName.get('ChatbridgeDeadLetters')!.expr).toMatch(/\[10m\]\)\) > 50$/);
    for (const a of alerts) {
      for (const matchers of a.expr.match(/\{[^}]*\}/g) ?? []) expect(matchers).toContain('cluster="eu-1", app="bridge"');
    }
  });

  it('ships a Grafana dashboard for the sidecar whose queries use only metrics the bridge exposes', async () => {
    const file = readFileSync(join(CHART_DIR, 'dashboards', 'chatbridge.json'), 'utf8');
    const ms = await helm.template({ set: { 'monitoring.dashboard.enabled': true, 'monitoring.dashboard.annotations': { grafana_folder: 'chat' } } });
    const cm = ms.find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'chatbridge-dashboard') as IConfigMap;
    expect(schemaProblems(cm as unknown as Manifest)).toEqual([]);
    expect(cm.metadata).toMatchObject({ namespace: NAMESPACE, labels: { grafana_dashboard: '1', 'app.kubernetes.io/instance': RELEASE }, annotations: { grafana_folder: 'chat' } });
    expect(cm.data?.['chatbridge.json']).toBe(file.trimEnd());

    const dashboard = JSON.parse(file) as Dashboard;
    expect(dashboard.uid).toBe('chatbridge');
    const queries = dashboardQueries(dashboard);
    const used = new Set(queries.flatMap(metricNames));
    const exposed = await exposedMetrics();
    expect([...used].filter((n) => !exposed.has(n))).toEqual([]);
    // What operators look at first: events in and out per channel, publish latency, webhook deliveries and failures,
    // queue depth, reconnects, commands.
    for (const name of [
      'chatbridge_events_in_total', 'chatbridge_events_out_total', 'chatbridge_publish_duration_seconds_bucket', 'chatbridge_webhook_delivered_total',
      'chatbridge_webhook_failures_total', 'chatbridge_sink_queue_depth', 'chatbridge_reconnects_total', 'chatbridge_commands_finished_total',
    ]) expect(used).toContain(name);
    for (const q of queries) expect(q).not.toMatch(/\$\{/);
    expect(used).not.toContain('chatbridge_commands_total');
    for (const name of used) if (name.endsWith('_bucket')) expect(name).toMatch(/_duration_seconds_bucket$/);
    expect(dashboard.panels.filter((p) => p.type !== 'row' && !p.targets?.length).map((p) => p.title)).toEqual([]);

    // The sidecar's label and the namespace are the cluster's choice (null drops a default label).
    const custom = await helm.template({ set: { 'monitoring.dashboard.enabled': true, 'monitoring.dashboard.labels': { grafana_dashboard: null, dashboards: 'chat' }, 'monitoring.dashboard.namespace': 'monitoring' } });
    const moved = custom.find((m) => m.metadata.name === 'chatbridge-dashboard')!;
    expect(moved.metadata.namespace).toBe('monitoring');
    expect(moved.metadata.labels).toMatchObject({ dashboards: 'chat' });
    expect(moved.metadata.labels).not.toHaveProperty('grafana_dashboard');
  });

  it('refuses unknown keys at the values root and in the new blocks, naming them; accepts a parent chart\'s global', async () => {
    expect(await helm.templateError({ set: { replicas: 3 } })).toContain('Additional property replicas is not allowed');
    expect(await helm.templateError({ set: { ingress: { enabled: true, host: 'x.example.com' } } })).toContain('Additional property host is not allowed');
    expect(await helm.templateError({ set: { 'monitoring.prometheusRule.alerts.sinkDwn': { for: '1m' } } })).toContain('Additional property sinkDwn is not allowed');
    expect(await helm.templateError({ set: { 'monitoring.prometheusRule.alerts.sinkDown.for': '5 minutes' } })).toContain('monitoring.prometheusRule.alerts.sinkDown.for');
    expect(await helm.templateError({ set: { 'autoscaling.maxReplica': 4 } })).toContain('Additional property maxReplica is not allowed');
    await expect(helm.lint({ set: { replicas: 3 } })).rejects.toMatchObject({ stdout: expect.stringContaining('Additional property replicas is not allowed') });
    expect((await helm.template({ set: { global: { imageRegistry: 'r.example.com' } } })).map((m) => m.kind)).toContain('Deployment');
  });

  it('passes helm lint --strict with everything enabled', async () => {
    expect(await helm.lint({ values: ['kafka-cluster-values.yaml'], set: EVERYTHING_ON })).toContain('0 chart(s) failed');
    const kinds = (await helm.template({ values: ['kafka-cluster-values.yaml'], set: EVERYTHING_ON })).map((m) => m.kind);
    expect(kinds).toEqual(expect.arrayContaining(['Ingress', 'PrometheusRule', 'ServiceMonitor', 'ConfigMap']));
  });
});
