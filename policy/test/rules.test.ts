import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../worker/build";
import { type PolicyContext, RULES, type StackResource, TYPES, evaluatePolicies } from "../rules";

const TODAY = new Date("2026-11-26T00:00:00Z");
const context = (overrides: Partial<PolicyContext> = {}): PolicyContext => ({
  stack: "prod",
  protect: true,
  zoneName: "example.com",
  otherStacksNamespaces: new Map(),
  today: TODAY,
  ...overrides,
});

const kv = (binding: string, namespaceId: string) => ({ type: "kv_namespace", name: binding, namespaceId });
const namespace = (name: string, id: string, extra: Partial<StackResource> = {}): StackResource => ({
  type: TYPES.namespace,
  name,
  id,
  inputs: { title: `kv-worker-stack-prod-${name}` },
  protect: true,
  retainOnDelete: true,
  ...extra,
});
/** What a Worker backing CONFIG up binds (every test Worker does, unless `backups` says otherwise). */
const BACKUP_BINDINGS = [
  { type: "r2_bucket", name: "BACKUPS", bucketName: "kv-worker-stack-prod-backups" },
  { type: "plain_text", name: "BACKUP_NAMESPACES", text: "CONFIG,SESSIONS" },
];
const worker = (type: string, bindings: object[], extra: Record<string, unknown> = {}, backups = BACKUP_BINDINGS): StackResource => ({
  type,
  name: type === TYPES.version ? "worker-version" : "worker-script",
  inputs: { compatibilityDate: "2026-07-30", bindings: [...bindings, ...backups], ...extra },
  protect: false,
});

/** A small stack every rule accepts: two namespaces, a Worker bound to the production one, a route and a domain in the zone. */
const good = (workerType: string = TYPES.script): StackResource[] => [
  namespace("kv-sessions", "ns-prod"),
  namespace("kv-sessions-preview", "ns-preview", { protect: false, retainOnDelete: false }),
  worker(workerType, [
    kv("SESSIONS", "ns-prod"),
    { type: "plain_text", name: "ORIGIN_URL", text: "https://origin.test" },
    { type: "secret_text", name: "ADMIN_TOKEN", text: "[secret]" },
  ]),
  { type: TYPES.bucket, name: "backups-bucket", inputs: { name: "kv-worker-stack-prod-backups" }, protect: true, retainOnDelete: true },
  { type: TYPES.lifecycle, name: "backups-lifecycle", inputs: { rules: [] }, protect: false },
  { type: TYPES.cron, name: "worker-cron", inputs: { schedules: [{ cron: "0 3 * * *" }, { cron: "*/5 * * * *" }] }, protect: false },
  { type: TYPES.route, name: "worker-route", inputs: { pattern: "*.example.com/api/*" }, protect: false },
  { type: TYPES.domain, name: "worker-domain", inputs: { hostname: "api.example.com" }, protect: false },
  { type: TYPES.subdomain, name: "worker-workers-dev", inputs: { enabled: false }, protect: false },
];

const findings = (resources: StackResource[], ctx = context()) => evaluatePolicies(resources, ctx);
const rulesHit = (resources: StackResource[], ctx = context()) => findings(resources, ctx).map((f) => f.rule);
/** The good stack with one resource replaced (matched by name) or added. */
const withResource = (resource: StackResource, base = good()) => [...base.filter((r) => r.name !== resource.name), resource];

describe("policy rules", () => {
  it.each([TYPES.script, TYPES.version])("accept the small good stack (bindings on %s)", (type) => {
    expect(findings(good(type))).toEqual([]);
  });

  describe.each([TYPES.script, TYPES.version])("on %s", (type) => {
    const binding = (bindings: object[]) => withResource(worker(type, bindings), good(type));

    it("kv-bindings-own-production-namespaces: refuses a preview namespace", () => {
      const [f] = findings(binding([kv("SESSIONS", "ns-preview")]));
      expect(f).toMatchObject({ rule: "kv-bindings-own-production-namespaces", enforcementLevel: "mandatory" });
      expect(f?.message).toMatch(/preview namespace kv-sessions-preview .*bind the production namespace/);
    });
    it("kv-bindings-own-production-namespaces: refuses another stack's namespace", () => {
      const resources = withResource(namespace("kv-cache", "ns-dev-cache"), binding([kv("CACHE", "ns-dev-cache")]));
      const [f] = findings(resources, context({ otherStacksNamespaces: new Map([["ns-dev-cache", "dev"]]) }));
      expect(f?.message).toMatch(/binding CACHE points at namespace ns-dev-cache, which stack "dev" uses; bind CACHE to this stack's own namespace/);
    });
    it("kv-bindings-own-production-namespaces: refuses a namespace the stack does not manage", () => {
      expect(findings(binding([kv("SESSIONS", "f".repeat(32))]))[0]?.message).toMatch(/which this stack does not manage/);
    });
    it("kv-bindings-own-production-namespaces: skips an id the preview does not know yet", () => {
      expect(rulesHit(binding([{ type: "kv_namespace", name: "SESSIONS", namespaceId: undefined }]))).toEqual([]);
    });
    it("admin-token-secret-text: refuses the admin token in any other binding type", () => {
      const hit = findings(binding([{ type: "plain_text", name: "ADMIN_TOKEN", text: "t" }]));
      expect(hit.map((f) => f.rule)).toEqual(["admin-token-secret-text", "no-plain-text-secrets"]);
      expect(hit[0]?.message).toMatch(/ADMIN_TOKEN is plain_text; bind the admin token as secret_text .*pulumi config set --secret adminToken/);
    });
    it("admin-token-secret-text: accepts the token inherited from a version that binds it as secret_text, and no other", () => {
      const secrets: StackResource = {
        type: TYPES.version,
        name: "worker-secrets",
        id: "secrets-version",
        inputs: { compatibilityDate: "2026-07-30", bindings: [{ type: "secret_text", name: "ADMIN_TOKEN", text: "[secret]" }] },
        protect: false,
      };
      const release = (versionId: unknown, idKnown: boolean) => ({
        ...worker(type, [kv("SESSIONS", "ns-prod"), { type: "inherit", name: "ADMIN_TOKEN", versionId }]),
        id: idKnown ? "release-version" : undefined,
      });
      const inherit = (versionId: unknown, idKnown = true) => withResource(secrets, withResource(release(versionId, idKnown), good(type)));
      expect(rulesHit(inherit("secrets-version"))).toEqual([]);
      // A preview that does not know the secrets version's id yet, or an engine that names no ids: nothing to refuse.
      expect(rulesHit(inherit(undefined))).toEqual([]);
      if (type === TYPES.version) expect(rulesHit(inherit("some-other-version", false))).toEqual([]);
      const [f] = findings(inherit("some-other-version"));
      expect(f).toMatchObject({ rule: "admin-token-secret-text", enforcementLevel: "mandatory" });
      expect(f?.message).toMatch(/inherits from version some-other-version, which does not bind it as secret_text/);
    });
    it.each(["API_TOKEN", "stripe_secret", "SIGNING_KEY", "DB_PASSWORD"])("no-plain-text-secrets: refuses plain_text %s", (name) => {
      const [f] = findings(binding([{ type: "plain_text", name, text: "x" }]));
      expect(f).toMatchObject({ rule: "no-plain-text-secrets", enforcementLevel: "mandatory" });
      expect(f?.message).toMatch(/make it a secret_text binding/);
    });
    it("no-plain-text-secrets: accepts secret_text with such a name", () => {
      expect(rulesHit(binding([{ type: "secret_text", name: "API_TOKEN", text: "[secret]" }]))).toEqual([]);
    });
    it("compatibility-date-within-12-months: advises on an old date", () => {
      const [f] = findings(withResource(worker(type, [], { compatibilityDate: "2025-11-25" }), good(type)));
      expect(f).toMatchObject({ rule: "compatibility-date-within-12-months", enforcementLevel: "advisory" });
      expect(rulesHit(withResource(worker(type, [], { compatibilityDate: "2025-11-27" }), good(type)))).toEqual([]);
    });
  });

  it("protected-production-namespaces: refuses an unprotected or unretained production namespace in a protected stack", () => {
    const unprotected = findings(withResource(namespace("kv-sessions", "ns-prod", { protect: false })));
    expect(unprotected.map((f) => f.rule)).toEqual(["protected-production-namespaces"]);
    expect(unprotected[0]?.message).toMatch(/kv-sessions is not protected .*protect: true, retainOnDelete: true/);
    expect(findings(withResource(namespace("kv-sessions", "ns-prod", { retainOnDelete: false })))[0]?.message).toMatch(/not retained on delete/);
    // Pulumi's policy API does not report retainOnDelete: unknown is not a violation.
    expect(rulesHit(withResource(namespace("kv-sessions", "ns-prod", { retainOnDelete: undefined })))).toEqual([]);
    expect(rulesHit(withResource(namespace("kv-sessions", "ns-prod", { protect: false })), context({ protect: false }))).toEqual([]);
  });

  it("protected-stack-backs-up-config: refuses a protected stack that does not back CONFIG up to a kept bucket on a schedule", () => {
    const base = good();
    const original = base.find((r) => r.name === "worker-script")!;
    const own = (original.inputs.bindings as { type: string; name: string }[]).filter((b) => !BACKUP_BINDINGS.some((backup) => backup.name === b.name));
    const noBackups = withResource(worker(TYPES.script, own, {}, []));
    expect(findings(noBackups).map((f) => [f.rule, f.enforcementLevel])).toEqual([
      ["protected-stack-backs-up-config", "mandatory"],
      ["protected-stack-backs-up-config", "mandatory"],
    ]);
    expect(findings(noBackups)[0]?.message).toMatch(/no BACKUPS R2 binding.*set kv-worker-stack:backups in Pulumi.prod.yaml/);
    const sessionsOnly = withResource(worker(TYPES.script, [], {}, [BACKUP_BINDINGS[0]!, { type: "plain_text", name: "BACKUP_NAMESPACES", text: "SESSIONS" }]));
    expect(findings(sessionsOnly)[0]?.message).toMatch(/CONFIG is not among the namespaces backed up \(BACKUP_NAMESPACES=SESSIONS\)/);
    const noCron = base.filter((r) => r.type !== TYPES.cron);
    expect(findings(noCron)[0]?.message).toMatch(/no cron trigger/);
    const unprotected = withResource({ ...base.find((r) => r.type === TYPES.bucket)!, protect: false });
    expect(findings(unprotected)[0]?.message).toMatch(/backups bucket is not protected/);
    expect(findings(base.filter((r) => r.type !== TYPES.lifecycle))[0]?.message).toMatch(/no lifecycle rule/);
    // An unprotected stack (dev) may go without.
    expect(rulesHit(noBackups, context({ protect: false }))).toEqual([]);
  });

  it("routes-in-stack-zone: refuses a route or custom domain outside the zone, or with no zone", () => {
    const route = findings(withResource({ type: TYPES.route, name: "worker-route", inputs: { pattern: "evil.test/*" }, protect: false }));
    expect(route[0]).toMatchObject({ rule: "routes-in-stack-zone", resource: "worker-route" });
    expect(route[0]?.message).toMatch(/route evil.test\/\* is outside the stack's zone example.com/);
    const domain = findings(withResource({ type: TYPES.domain, name: "worker-domain", inputs: { hostname: "notexample.com" }, protect: false }));
    expect(domain[0]?.message).toMatch(/custom domain notexample.com is outside/);
    expect(findings(good(), context({ zoneName: undefined })).map((f) => f.message)).toEqual([
      expect.stringMatching(/route .* the stack has no zone; set kv-worker-stack:zoneName/),
      expect.stringMatching(/custom domain .* the stack has no zone/),
    ]);
  });

  it("deployment-percentages-sum-to-100: refuses a split that does not add up", () => {
    const deployment = (percentages: unknown[]): StackResource => ({
      type: TYPES.deployment,
      name: "worker-deployment",
      inputs: { strategy: "percentage", versions: percentages.map((percentage, i) => ({ versionId: `v${i}`, percentage })) },
      protect: false,
    });
    const [f] = findings(withResource(deployment([90, 20])));
    expect(f).toMatchObject({ rule: "deployment-percentages-sum-to-100", enforcementLevel: "mandatory" });
    expect(f?.message).toMatch(/sum to 110, not 100/);
    expect(rulesHit(withResource(deployment([90, 10])))).toEqual([]);
    expect(rulesHit(withResource(deployment([100])))).toEqual([]);
    expect(rulesHit(withResource(deployment([90, undefined])))).toEqual([]); // not known at preview
  });

  it("no-workers-dev-in-protected-stack: advises on workers.dev in a protected stack, on the subdomain or the Worker", () => {
    const subdomain: StackResource = { type: TYPES.subdomain, name: "worker-workers-dev", inputs: { enabled: true }, protect: false };
    const [f] = findings(withResource(subdomain));
    expect(f).toMatchObject({ rule: "no-workers-dev-in-protected-stack", enforcementLevel: "advisory" });
    expect(f?.message).toMatch(/set kv-worker-stack:workersDev: false in Pulumi.prod.yaml/);
    const workerResource: StackResource = { type: TYPES.worker, name: "worker", inputs: { subdomain: { enabled: true } }, protect: false };
    expect(rulesHit(withResource(workerResource))).toEqual(["no-workers-dev-in-protected-stack"]);
    expect(rulesHit(withResource(subdomain), context({ protect: false }))).toEqual([]);
  });

  it("every rule is seen failing by a test above", () => {
    expect(RULES.map((r) => r.name).sort()).toEqual([
      "admin-token-secret-text",
      "compatibility-date-within-12-months",
      "deployment-percentages-sum-to-100",
      "kv-bindings-own-production-namespaces",
      "no-plain-text-secrets",
      "no-workers-dev-in-protected-stack",
      "protected-production-namespaces",
      "protected-stack-backs-up-config",
      "routes-in-stack-zone",
    ]);
  });
});

describe("npm run plan with the policies", () => {
  it("npm run plan exits 1 on a stack file that binds another stack's namespace", async () => {
    const root = mkdtempSync(join(tmpdir(), "policy-"));
    for (const file of ["Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"]) copyFileSync(join(ROOT, file), join(root, file));
    const prodSessions = "a".repeat(32);
    const adopt = (stack: string, yaml: string) => writeFileSync(join(root, `Pulumi.${stack}.yaml`), readFileSync(join(root, `Pulumi.${stack}.yaml`), "utf8") + yaml);
    adopt("prod", `  kv-worker-stack:adoptedNamespaces:\n    SESSIONS:\n      id: "${prodSessions}"\n`);
    adopt("dev", `  kv-worker-stack:adoptedNamespaces:\n    SESSIONS:\n      id: "${prodSessions}"\n`);
    const result = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/plan.ts", "--stack", "dev", "--root", root], { cwd: ROOT }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `policy dev: mandatory kv-bindings-own-production-namespaces: worker-version: binding SESSIONS points at namespace ${prodSessions}, which stack "prod" uses`,
    );
    expect(result.stderr).toMatch(/plan: 1 mandatory policy violation \(above\)/);
  }, 30_000);
});
