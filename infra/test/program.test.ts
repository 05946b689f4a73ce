import { beforeAll, describe, expect, it } from "vitest";
import { COMPATIBILITY_DATE, KV_BINDINGS, decodeFlag, flagFromMetadata, flagKey } from "../../worker/src/contract";
import { ROOT } from "../../scripts/build";
import { SNAPSHOT_BUNDLE, checkPolicies } from "../../scripts/plan";
import { type RecordedBinding, type Recording, SECRET, findResource, recordStack } from "../plan/record";
import { loadStackConfig, readStackFiles } from "../stack-file";

const T = {
  namespace: "cloudflare:index/workersKvNamespace:WorkersKvNamespace",
  script: "cloudflare:index/workersScript:WorkersScript",
  route: "cloudflare:index/workersRoute:WorkersRoute",
  domain: "cloudflare:index/workersCustomDomain:WorkersCustomDomain",
  subdomain: "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain",
  kv: "cloudflare:index/workersKv:WorkersKv",
};
const ADMIN_TOKEN = "s3cret-admin-token-for-tests";

const record = (stack: string) =>
  recordStack(stack, { config: readStackFiles(stack), secrets: { adminToken: ADMIN_TOKEN }, bundle: SNAPSHOT_BUNDLE });

const stacks: Record<string, Recording> = {};
beforeAll(async () => {
  stacks.dev = await record("dev");
  stacks.prod = await record("prod");
});

const bindingsOf = (r: Recording) => findResource(r, T.script, "worker-script").inputs.bindings as RecordedBinding[];

describe.each(["dev", "prod"])("stack %s", (stack) => {
  it("registers exactly the expected resources", () => {
    const config = loadStackConfig(stack);
    const expected = [
      "kv-worker-stack:cloudflare:KvNamespaces kv",
      "kv-worker-stack:cloudflare:FeatureFlags flags",
      "kv-worker-stack:cloudflare:WorkerService worker",
      ...KV_BINDINGS.flatMap((b) => [`${T.namespace} kv-${b.toLowerCase()}`, `${T.namespace} kv-${b.toLowerCase()}-preview`]),
      `${T.script} worker-script`,
      `${T.subdomain} worker-workers-dev`,
      ...config.routes.map((p) => `${T.route} worker-route-${p}`),
      ...config.customDomains.map((h) => `${T.domain} worker-domain-${h}`),
      ...Object.keys(config.flags).map((f) => `${T.kv} flags-${f}`),
    ];
    expect(stacks[stack]!.resources.map((r) => `${r.type} ${r.name}`).sort()).toEqual(expected.sort());
  });

  it("binds SESSIONS, CACHE and CONFIG to the production namespaces, never the preview ones", () => {
    const r = stacks[stack]!;
    const kvBindings = bindingsOf(r).filter((b) => b.type === "kv_namespace");
    expect(kvBindings.map((b) => b.name)).toEqual([...KV_BINDINGS]);
    for (const b of kvBindings) {
      const target = r.resources.find((res) => res.id === b.namespaceId);
      expect(target?.inputs.title).toBe(`kv-worker-stack-${stack}-${b.name.toLowerCase()}`);
    }
    const previewIds = r.resources.filter((res) => res.name.endsWith("-preview")).map((res) => res.id);
    expect(JSON.stringify(findResource(r, T.script, "worker-script").inputs)).not.toMatch(new RegExp(previewIds.join("|")));
  });

  it("creates one preview namespace per binding, exported as previewNamespaceIds", () => {
    const r = stacks[stack]!;
    for (const b of KV_BINDINGS) {
      const preview = findResource(r, T.namespace, `kv-${b.toLowerCase()}-preview`);
      expect(preview.inputs.title).toBe(`kv-worker-stack-${stack}-${b.toLowerCase()}-preview`);
      expect((r.outputs.previewNamespaceIds as Record<string, string>)[b]).toBe(preview.id);
      expect((r.outputs.namespaceIds as Record<string, string>)[b]).toBe(findResource(r, T.namespace, `kv-${b.toLowerCase()}`).id);
    }
  });

  it("passes every rule of the policy pack", () => {
    expect(checkPolicies(stacks[stack]!, ROOT, new Date(`${COMPATIBILITY_DATE}T00:00:00Z`))).toEqual([]);
  });

  it("hands the provider the bundle's path and sha256, never its code", () => {
    const script = findResource(stacks[stack]!, T.script, "worker-script").inputs;
    expect(script).toMatchObject({ contentFile: "dist/worker.js", contentSha256: SNAPSHOT_BUNDLE.sha256, mainModule: "worker.js" });
    expect(script).not.toHaveProperty("content");
    expect(script.observability).toMatchObject({ enabled: true, logs: { enabled: true } });
  });

  it("keeps the admin token secret: a secret_text binding and a secret output, never plain text", () => {
    const r = stacks[stack]!;
    expect(bindingsOf(r).find((b) => b.name === "ADMIN_TOKEN")).toEqual({ type: "secret_text", name: "ADMIN_TOKEN", text: SECRET });
    expect(findResource(r, T.script, "worker-script").secretInputs).toContain("bindings");
    expect(r.secretOutputs).toEqual(["adminToken"]);
    expect(JSON.stringify(r)).not.toContain(ADMIN_TOKEN);
  });

  it("writes each flag declared as code to CONFIG in the Worker's own format", () => {
    const r = stacks[stack]!;
    const { flags } = loadStackConfig(stack);
    expect(Object.keys(flags).length).toBeGreaterThan(0);
    for (const [name, flag] of Object.entries(flags)) {
      const entry = findResource(r, T.kv, `flags-${name}`).inputs;
      expect(entry.keyName).toBe(flagKey(name));
      expect(entry.namespaceId).toBe(findResource(r, T.namespace, "kv-config").id);
      expect(decodeFlag(String(entry.value))).toEqual(flag);
      expect(flagFromMetadata(JSON.parse(String(entry.metadata)))).toEqual(flag);
    }
    expect(bindingsOf(r).find((b) => b.name === "MANAGED_FLAGS")?.text).toBe(Object.keys(flags).join(","));
  });

  it("exports the agreed outputs", () => {
    expect(Object.keys(stacks[stack]!.outputs).sort()).toEqual(
      ["adminToken", "bundleSha256", "customDomainUrls", "environment", "namespaceIds", "previewNamespaceIds", "url", "workerName", "workersDevUrl"],
    );
    expect(stacks[stack]!.outputs).toMatchObject({ environment: stack, bundleSha256: SNAPSHOT_BUNDLE.sha256 });
  });
});

describe("per-environment differences", () => {
  it("protects and retains the production namespaces in prod, not in dev, and never the preview ones", () => {
    for (const [stack, expected] of [["dev", false], ["prod", true]] as const) {
      for (const b of KV_BINDINGS) {
        const ns = findResource(stacks[stack]!, T.namespace, `kv-${b.toLowerCase()}`);
        expect({ stack, b, protect: ns.protect, retain: ns.retainOnDelete }).toEqual({ stack, b, protect: expected, retain: expected });
        const preview = findResource(stacks[stack]!, T.namespace, `kv-${b.toLowerCase()}-preview`);
        expect(preview.protect || preview.retainOnDelete).toBe(false);
      }
    }
  });

  it("routes and custom domains follow the stack config, pointing at the stack's Worker", () => {
    const prod = stacks.prod!;
    const config = loadStackConfig("prod");
    expect(findResource(prod, T.route, "worker-route-example.com/api/*").inputs).toEqual({
      zoneId: config.zoneId,
      pattern: "example.com/api/*",
      script: "kv-worker-stack-prod-worker",
    });
    expect(findResource(prod, T.domain, "worker-domain-api.example.com").inputs).toEqual({
      accountId: config.accountId,
      zoneId: config.zoneId,
      hostname: "api.example.com",
      service: "kv-worker-stack-prod-worker",
    });
    expect(prod.outputs).toMatchObject({ url: "https://api.example.com", customDomainUrls: ["https://api.example.com"] });
    expect(stacks.dev!.resources.filter((r) => r.type === T.route || r.type === T.domain)).toEqual([]);
  });

  it("turns workers.dev on in dev and off in prod", () => {
    expect(findResource(stacks.dev!, T.subdomain, "worker-workers-dev").inputs.enabled).toBe(true);
    expect(findResource(stacks.prod!, T.subdomain, "worker-workers-dev").inputs.enabled).toBe(false);
    expect(stacks.dev!.outputs.url).toBe("https://kv-worker-stack-dev-worker.example-team.workers.dev");
    expect(stacks.prod!.outputs.workersDevUrl).toBeUndefined();
  });
});
