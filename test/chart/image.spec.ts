import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CHART_DIR } from './helm';

const ROOT = join(__dirname, '..', '..');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/** `.dockerignore` patterns as used here: a name at the context root, `*` within one path segment. */
const isIgnored = (path: string) =>
  ignored.some((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`).test(path));

/** The instructions of the last stage (the image that runs). */
const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

/** No Docker engine here: the image is checked for what the chart and the build rely on. */
describe('container image (Dockerfile)', () => {
  it('copies into the build only files the build context keeps, and they exist', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1].split(/\s+/));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.build.json', 'src']));
    for (const source of sources) {
      expect({ source, ignored: isIgnored(source), exists: existsSync(join(ROOT, source)) }).toEqual({ source, ignored: false, exists: true });
    }
    // Nothing local, secret or bulky reaches the daemon.
    for (const path of ['node_modules', '.git', '.data', 'dist', 'chatbridge.yaml', '.env']) expect(isIgnored(path)).toBe(true);
  });

  it('builds and runs on Node 24 LTS, the runtime CI tests (.ci/run, scripts/node24.sh) and engines allows', () => {
    // Both stages on one base: what `npm run build` compiled with is what runs it.
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(bases).toEqual(['node:24-bookworm-slim', 'node:24-bookworm-slim']);
    // The image's Node is one package.json admits, and the one CI fetches and runs the tests and the fault suite on.
    const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const oldest = /^>=(\d+)$/.exec(engines);
    expect(oldest).not.toBeNull();
    expect(24).toBeGreaterThanOrEqual(Number(oldest![1]));
    expect(readFileSync(join(ROOT, 'scripts', 'node24.sh'), 'utf8')).toMatch(/"\$pkg@24"/);
    expect(readFileSync(join(ROOT, '.ci', 'run'), 'utf8')).toMatch(/scripts\/node24\.sh/);
  });

  it('runs production dependencies only, as the non-root uid the chart expects, with the command and port the chart uses', () => {
    const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as { securityContext: { runAsUser: number }; podSecurityContext: { runAsUser: number } };
    expect(runtimeStage).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtimeStage).toMatch(/^ENV NODE_ENV=production$/m);
    expect(runtimeStage).toMatch(/^EXPOSE 8080$/m);
    // The image runs exactly what `npm start` runs, V8 flags included.
    const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ');
    expect(start.slice(-1)).toEqual(['dist/main.js']);
    const cmd = /^CMD (\[.*\])$/m.exec(runtimeStage);
    expect(cmd && JSON.parse(cmd[1])).toEqual(start);
    const user = /^USER (\d+)(?::\d+)?$/m.exec(runtimeStage);
    expect(user).not.toBeNull();
    expect(Number(user![1])).toBeGreaterThan(0);
    expect(values.securityContext.runAsUser).toBe(Number(user![1]));
    expect(values.podSecurityContext.runAsUser).toBe(Number(user![1]));
    // The build stage compiles; the runtime stage only takes its output.
    expect(dockerfile).toMatch(/^RUN npm run build$/m);
    expect(runtimeStage).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
  });
});
