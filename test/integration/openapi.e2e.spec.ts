import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBridge, TEST_TOKEN, type TestBridge } from '../helpers/bridge-harness';
import { newSecret, ReceiverPool } from '../helpers/webhook-receiver';
import { ZapThinkerSimulator } from '../simulators/zapthinker/zapthinker.simulator';

/* GET /openapi.json and /docs (docs/api.md#openapi): the served document is valid OpenAPI 3.1, describes every route
 * the bridge registers, and each request example it shows is accepted by the running bridge. */

interface Operation {
  parameters?: Array<{ name: string; in: string; example?: unknown; schema?: { example?: unknown } }>;
  requestBody?: { content: Record<string, { examples?: Record<string, { value: unknown }> }> };
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
  security?: Array<Record<string, string[]>>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> } };

/** The validator is an ES module; its CLI runs it outside Jest's CommonJS loader. */
const VALIDATOR = join(__dirname, '..', '..', 'node_modules', '@seriousme', 'openapi-schema-validator', 'bin', 'validate-api-cli.js');

function validate(document: unknown): Promise<{ valid: boolean; errors?: unknown }> {
  const dir = mkdtempSync(join(tmpdir(), 'chatbridge-openapi-'));
  const file = join(dir, 'openapi.json');
  writeFileSync(file, JSON.stringify(document));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [VALIDATOR, file], { timeout: 60_000 }, (err, stdout) => {
      rmSync(dir, { recursive: true, force: true });
      try {
        resolve(JSON.parse(stdout) as { valid: boolean; errors?: unknown });
      } catch {
        reject(err ?? new Error(`validator printed ${stdout}`));
      }
    });
  });
}

describe('OpenAPI document (e2e)', () => {
  const receivers = new ReceiverPool();
  let zsim: ZapThinkerSimulator;
  let bridge: TestBridge;
  let document: Document;

  beforeAll(async () => {
    zsim = new ZapThinkerSimulator({ instances: { sales: { token: 'tok-sales' } } });
    await zsim.start();
    zsim.touch('sales');
    const crm = await receivers.start();
    // The ids the document's examples name: channel wa-sales, webhook endpoint crm.
    bridge = await startTestBridge({
      channels: [{ id: 'wa-sales', provider: 'zapthinker', inbound: { token: 'inbound-token-0123456789' }, zapthinker: { url: zsim.url, instance: 'sales', apiKey: 'tok-sales' } }],
      webhooks: [{ id: 'crm', url: crm.url, secret: newSecret() }],
    });
    const res = await fetch(`${bridge.url}/openapi.json`);
    expect(res.status).toBe(200);
    document = (await res.json()) as Document;
  });

  afterAll(async () => {
    await bridge?.close();
    await receivers.stopAll();
    await zsim?.stop();
  });

  it('is served without auth as a valid OpenAPI 3.1 document, browsable at /docs', async () => {
    expect(document.openapi).toBe('3.1.0');
    expect(await validate(document)).toEqual({ valid: true });
    const ui = await fetch(`${bridge.url}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger-ui');
  });

  it('describes every route the bridge registers, and no other', () => {
    const router = (bridge.app.getHttpAdapter().getInstance() as { router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> } }).router;
    const registered = router.stack.flatMap((layer) => layer.route ? Object.keys(layer.route.methods).map((m) => `${m} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`) : [])
      // Swagger UI's own files and the document itself.
      .filter((route) => !/^get \/docs\b/.test(route) && route !== 'get /openapi.json');
    const documented = Object.entries(document.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    expect(registered.length).toBeGreaterThan(10);
    expect(documented.sort()).toEqual(registered.sort());
  });

  it('declares the auth of each route: bearer under /v1, the channel token or HMAC for inbound posts, none for probes', () => {
    expect(Object.keys(document.components.securitySchemes).sort()).toEqual(['bearer', 'inboundHmac', 'inboundToken']);
    for (const [path, ops] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const schemes = (op.security ?? []).flatMap((s) => Object.keys(s)).sort();
        const expected = path.startsWith('/v1/inbound/') ? ['inboundHmac', 'inboundToken'] : path.startsWith('/v1/') ? ['bearer'] : [];
        expect({ route: `${method} ${path}`, schemes }).toEqual({ route: `${method} ${path}`, schemes: expected });
        // Every documented error answers the shared error JSON (readyz's 503 is its readiness body).
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) >= 400 && path !== '/readyz') expect(response.content?.['application/json']?.schema?.$ref).toBe('#/components/schemas/ApiError');
        }
      }
    }
  });

  it('each request example is accepted by the running bridge with a documented 2xx', async () => {
    const sent: string[] = [];
    for (const [path, ops] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const examples = op.requestBody?.content['application/json']?.examples ?? {};
        for (const [name, example] of Object.entries(examples)) {
          const url = path.replace(/\{(\w+)\}/g, (_m, param: string) => {
            const p = op.parameters?.find((x) => x.in === 'path' && x.name === param);
            return String(p?.example ?? p?.schema?.example);
          });
          const res = await fetch(`${bridge.url}${url}`, {
            method: method.toUpperCase(),
            headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_TOKEN}` },
            body: JSON.stringify(example.value),
          });
          const ok = Object.keys(op.responses).filter((s) => /^2\d\d$/.test(s)).map(Number);
          const answer = { example: `${method} ${path} ${name}`, status: res.status, body: (await res.json()) as unknown };
          expect({ ...answer, documented: ok.includes(res.status) }).toEqual({ ...answer, documented: true });
          sent.push(`${method} ${path} ${name}`);
        }
      }
    }
    expect(sent).toEqual(expect.arrayContaining(['post /v1/channels/{id}/commands message', 'put /v1/channels/{id}/mode webhook', 'post /v1/webhooks/{id}/replay dryRun']));
  });
});
