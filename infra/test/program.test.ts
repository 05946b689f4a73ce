import { beforeAll, describe, expect, it } from "vitest";
import { COMPATIBILITY_DATE, KV_BINDINGS, RATE_LIMIT_BINDINGS, RATE_LIMIT_NAMES, SECRETS, VARS, VERSION_METADATA_BINDING, decodeFlag, evaluatorKey, flagFromMetadata, flagKey } from "../../worker/src/contract";
import { ROOT } from "../../worker/build";
import { BACKUP_VARS, BACKUPS_BINDING, CONTINUE_CRON } from "../../worker/src/backup/format";
import { SNAPSHOT_BUNDLE, checkPolicies } from "../../scripts/plan";
import { type RecordedBinding, type Recording, SECRET, findResource, recordStack } from "../plan/record";
import { trafficSplit } from "../rollout";
import { loadStackConfig, readStackFiles } from "../stack-file";

const T = {
  namespace: "cloudflare:index/workersKvNamespace:WorkersKvNamespace",
  worker: "cloudflare:index/worker:Worker",
  version: "cloudflare:index/workerVersion:WorkerVersion",
  deployment: "cloudflare:index/workersDeployment:WorkersDeployment",
  route: "cloudflare:index/workersRoute:WorkersRoute",
  domain: "cloudflare:index/workersCustomDomain:WorkersCustomDomain",
  kv: "cloudflare:index/workersKv:WorkersKv",
  bucket: "cloudflare:index/r2Bucket:R2Bucket",
  lifecycle: "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle",
  lock: "cloudflare:index/r2BucketLock:R2BucketLock",
  cron: "cloudflare:index/workersCronTrigger:WorkersCronTrigger",
};
const ADMIN_TOKEN = "s3cret-admin-token-for-tests";

const STABLE = "5f1d6b0e-8c1a-4e2b-9d3c-7a6f5e4d3c2b";
const record = (stack: string, overrides: Record<string, unknown> = {}) =>
  recordStack(stack, { config: { ...readStackFiles(stack), ...overrides }, secrets: { adminToken: ADMIN_TOKEN }, bundle: SNAPSHOT_BUNDLE });

const stacks: Record<string, Recording> = {};
beforeAll(async () => {
  stacks.dev = await record("dev");
  stacks.prod = await record("prod");
});

const bindingsOf = (r: Recording) => findResource(r, T.version, "worker-version").inputs.bindings as RecordedBinding[];
const splitOf = (r: Recording) => findResource(r, T.deployment, "worker-deployment").inputs.versions as { versionId: string; percentage: number }[];

describe.each(["dev", "prod"])("stack %s", (stack) => {
  it("registers exactly the expected resources", () => {
    const config = loadStackConfig(stack);
    const expected = [
      "kv-worker-stack:cloudflare:KvNamespaces kv",
      "kv-worker-stack:cloudflare:FeatureFlags flags",
      "kv-worker-stack:cloudflare:WorkerService worker",
      "kv-worker-stack:cloudflare:BackupBucket backups",
      `${T.bucket} backups-bucket`,
      `${T.lifecycle} backups-lifecycle`,
      ...(config.backups.lock ? [`${T.lock} backups-lock`] : []),
      `${T.cron} worker-cron`,
      ...KV_BINDINGS.flatMap((b) => [`${T.namespace} kv-${b.toLowerCase()}`, `${T.namespace} kv-${b.toLowerCase()}-preview`]),
      `${T.worker} worker-script`,
      `${T.version} worker-secrets`,
      `${T.version} worker-version`,
      `${T.deployment} worker-deployment`,
      ...config.routes.map((p) => `${T.route} worker-route-${p}`),
      ...config.customDomains.map((h) => `${T.domain} worker-domain-${h}`),
      ...Object.keys(config.flags).map((f) => `${T.kv} flags-${f}`),
      ...Object.keys(config.evaluators).map((e) => `${T.kv} flags-$${e}`),
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
    expect(JSON.stringify(findResource(r, T.version, "worker-version").inputs)).not.toMatch(new RegExp(previewIds.join("|")));
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

  it("uploads the bundle as a module by path and sha256, never its code, tagged with its hash", () => {
    const r = stacks[stack]!;
    const version = findResource(r, T.version, "worker-version");
    expect(version.inputs).toMatchObject({
      workerId: findResource(r, T.worker, "worker-script").id,
      mainModule: "worker.js",
      modules: [{ name: "worker.js", contentType: "application/javascript+module", contentFile: "dist/worker.js", contentSha256: SNAPSHOT_BUNDLE.sha256 }],
      annotations: { workersTag: SNAPSHOT_BUNDLE.sha256 },
    });
    expect(JSON.stringify(version.inputs)).not.toContain("contentBase64");
    expect(findResource(r, T.worker, "worker-script").inputs.observability).toMatchObject({ enabled: true, logs: { enabled: true } });
  });

  it("has the bindings the Worker had before versions, plus CF_VERSION_METADATA and the rate limiters", () => {
    const config = loadStackConfig(stack);
    expect(bindingsOf(stacks[stack]!).map((b) => `${b.name} ${b.type}`)).toEqual([
      ...KV_BINDINGS.map((b) => `${b} kv_namespace`),
      `${BACKUPS_BINDING} r2_bucket`,
      ...Object.values(VARS).map((name) => `${name} plain_text`),
      ...Object.values(BACKUP_VARS).map((name) => `${name} plain_text`),
      `${SECRETS.adminToken} inherit`,
      `${VERSION_METADATA_BINDING} version_metadata`,
      ...Object.values(RATE_LIMIT_BINDINGS).map((name) => `${name} ratelimit`),
    ]);
    expect(bindingsOf(stacks[stack]!).find((b) => b.name === VARS.environment)?.text).toBe(config.environment);
  });

  it("provisions a ratelimit binding per limit from the stack's rateLimits, with the stack's own namespace ids", () => {
    const config = loadStackConfig(stack);
    const limiters = bindingsOf(stacks[stack]!).filter((b) => b.type === "ratelimit");
    expect(limiters).toEqual(
      RATE_LIMIT_NAMES.map((name, i) => ({
        type: "ratelimit",
        name: RATE_LIMIT_BINDINGS[name],
        namespaceId: String(config.rateLimits.namespaceBase + i),
        simple: config.rateLimits.limits[name],
      })),
    );
    expect(JSON.parse(String(bindingsOf(stacks[stack]!).find((b) => b.name === VARS.rateLimits)?.text))).toEqual(config.rateLimits.limits);
  });

  it("backs up to its own bucket: the BACKUPS binding, a retention lifecycle, the schedule and continuation crons, a lock only where configured", () => {
    const r = stacks[stack]!;
    const config = loadStackConfig(stack);
    const bucket = findResource(r, T.bucket, "backups-bucket");
    expect(bucket.inputs).toMatchObject({ name: `kv-worker-stack-${stack}-backups` });
    expect(bindingsOf(r).find((b) => b.name === BACKUPS_BINDING)).toEqual({ type: "r2_bucket", name: BACKUPS_BINDING, bucketName: bucket.inputs.name });
    expect(bindingsOf(r).find((b) => b.name === BACKUP_VARS.namespaces)?.text).toBe("CONFIG,SESSIONS");
    const [rule] = findResource(r, T.lifecycle, "backups-lifecycle").inputs.rules as { conditions: unknown; deleteObjectsTransition: unknown; enabled: boolean }[];
    expect(rule).toMatchObject({
      enabled: true,
      conditions: { prefix: `${stack}/` },
      deleteObjectsTransition: { condition: { type: "Age", maxAge: config.backups.retainDays * 86_400 } },
    });
    expect(findResource(r, T.cron, "worker-cron").inputs).toMatchObject({
      scriptName: config.workerName,
      schedules: [{ cron: config.backups.schedule }, { cron: CONTINUE_CRON }],
    });
    const lock = r.resources.find((res) => res.type === T.lock);
    if (stack === "prod") {
      expect(lock?.inputs.rules).toEqual(
        ["prod/CONFIG/", "prod/SESSIONS/", "prod/_runs/"].map((prefix) =>
          expect.objectContaining({ prefix, enabled: true, condition: { type: "Age", maxAgeSeconds: config.backups.retainDays * 86_400 } }),
        ),
      );
      expect({ protect: bucket.protect, retain: bucket.retainOnDelete }).toEqual({ protect: true, retain: true });
    } else {
      expect(lock).toBeUndefined();
      expect(bucket.protect).toBe(false);
    }
  });

  it("keeps the admin token secret: one secrets version every release inherits it from, a secret output, never plain text", () => {
    const r = stacks[stack]!;
    const secrets = findResource(r, T.version, "worker-secrets");
    expect(secrets.inputs.bindings).toEqual([{ type: "secret_text", name: SECRETS.adminToken, text: SECRET }]);
    expect(secrets.secretInputs).toContain("bindings");
    expect(bindingsOf(r).find((b) => b.name === SECRETS.adminToken)).toEqual({ type: "inherit", name: SECRETS.adminToken, versionId: secrets.id });
    expect(r.secretOutputs).toEqual(["adminToken"]);
    expect(JSON.stringify(r)).not.toContain(ADMIN_TOKEN);
  });

  it("never deletes a version: a replacement leaves the old one for the deployment and rollbacks", () => {
    for (const name of ["worker-version", "worker-secrets"]) expect(findResource(stacks[stack]!, T.version, name).retainOnDelete).toBe(true);
  });

  it("deploys the new version to 100 % by default", () => {
    const r = stacks[stack]!;
    const candidate = findResource(r, T.version, "worker-version").id;
    expect(findResource(r, T.deployment, "worker-deployment").inputs).toMatchObject({
      scriptName: loadStackConfig(stack).workerName,
      strategy: "percentage",
      versions: [{ versionId: candidate, percentage: 100 }],
    });
    expect(r.outputs).toMatchObject({ candidateVersionId: candidate, activeVersionId: candidate, deployment: [{ versionId: candidate, percent: 100 }] });
  });

  it("binds the absolute session lifetime, and no previous admin token unless one is set", () => {
    const bindings = bindingsOf(stacks[stack]!);
    expect(bindings.find((b) => b.name === "SESSION_MAX_LIFETIME_SECONDS")).toEqual({
      type: "plain_text",
      name: "SESSION_MAX_LIFETIME_SECONDS",
      text: String(loadStackConfig(stack).sessionMaxLifetimeSeconds),
    });
    expect(bindings.map((b) => b.name)).not.toContain("ADMIN_TOKEN_PREVIOUS");
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
    const { evaluators } = loadStackConfig(stack);
    expect(bindingsOf(r).find((b) => b.name === "MANAGED_FLAGS")?.text).toBe([...Object.keys(flags), ...Object.keys(evaluators).map((e) => `$${e}`)].join(","));
  });

  it("writes each shared evaluator declared as code once, as evaluator:<name>", () => {
    const r = stacks[stack]!;
    const { evaluators } = loadStackConfig(stack);
    for (const [name, rule] of Object.entries(evaluators)) {
      const entry = findResource(r, T.kv, `flags-$${name}`).inputs;
      expect(entry.keyName).toBe(evaluatorKey(name));
      expect(JSON.parse(String(entry.value))).toEqual(rule);
    }
    expect(r.resources.filter((x) => x.type === T.kv && String(x.inputs.keyName).startsWith("evaluator:"))).toHaveLength(Object.keys(evaluators).length);
  });

  it("exports the agreed outputs, the workers.dev ones only with workers.dev and stableVersionId only when set", () => {
    const workersDev = stack === "dev" ? ["workersDevUrl", "versionUrl"] : [];
    expect(Object.keys(stacks[stack]!.outputs).sort()).toEqual(
      [
        "activeVersionId",
        "adminToken",
        "bundleSha256",
        "candidateVersionId",
        "customDomainUrls",
        "deployment",
        "environment",
        "namespaceIds",
        "previewNamespaceIds",
        "backupBucket",
        "url",
        "workerName",
        ...workersDev,
      ].sort(),
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

  it("turns workers.dev and version preview URLs on in dev and off in prod", () => {
    expect(findResource(stacks.dev!, T.worker, "worker-script").inputs.subdomain).toEqual({ enabled: true, previewsEnabled: true });
    expect(findResource(stacks.prod!, T.worker, "worker-script").inputs.subdomain).toEqual({ enabled: false, previewsEnabled: false });
    expect(stacks.dev!.outputs.url).toBe("https://kv-worker-stack-dev-worker.example-team.workers.dev");
    expect(stacks.dev!.outputs.versionUrl).toBe("https://worker-v-kv-worker-stack-dev-worker.example-team.workers.dev");
    expect(stacks.prod!.outputs.workersDevUrl).toBeUndefined();
    expect(stacks.prod!.outputs.versionUrl).toBeUndefined();
  });
});

describe("rollout", () => {
  it("sends a 10 % canary to the new version and 90 % to the stable one, which stays the active version", async () => {
    const r = await record("prod", { rollout: { percent: 10, stableVersionId: STABLE } });
    const candidate = findResource(r, T.version, "worker-version").id!;
    expect(splitOf(r)).toEqual([
      { versionId: STABLE, percentage: 90 },
      { versionId: candidate, percentage: 10 },
    ]);
    expect(r.outputs).toMatchObject({ activeVersionId: STABLE, candidateVersionId: candidate, stableVersionId: STABLE });
  });

  it("keeps the new version in the deployment at 0 %, reachable only through a version override", async () => {
    const r = await record("prod", { rollout: { percent: 0, stableVersionId: STABLE } });
    const candidate = findResource(r, T.version, "worker-version").id!;
    expect(splitOf(r)).toEqual([
      { versionId: STABLE, percentage: 100 },
      { versionId: candidate, percentage: 0 },
    ]);
    expect(r.outputs.activeVersionId).toBe(STABLE);
  });

  it("refuses a percent below 100 without stableVersionId before registering anything", async () => {
    const registered: string[] = [];
    const attempt = recordStack("prod", {
      config: { ...readStackFiles("prod"), rollout: { percent: 10 } },
      secrets: { adminToken: ADMIN_TOKEN },
      bundle: SNAPSHOT_BUNDLE,
      onResource: (res) => registered.push(res.name),
    });
    await expect(attempt).rejects.toThrow(/config key "kv-worker-stack:rollout.stableVersionId": is required when rollout.percent is 10/);
    expect(registered).toEqual([]);
  });

  it("always splits 100 % over at most two versions, whatever the percent", () => {
    for (let percent = 0; percent <= 100; percent++) {
      const shares = trafficSplit({ percent, stableVersionId: STABLE }, "new-version");
      expect(shares.reduce((sum, share) => sum + share.percent, 0)).toBe(100);
      expect(shares.length).toBeLessThanOrEqual(2);
      expect(shares.every((share) => share.percent >= 0)).toBe(true);
      expect(shares.find((share) => share.versionId === "new-version")?.percent).toBe(percent);
    }
    expect(trafficSplit({ percent: 10, stableVersionId: STABLE }, STABLE)).toEqual([{ versionId: STABLE, percent: 100 }]);
  });
});

describe("admin token rotation", () => {
  const PREVIOUS = "0ld-admin-token-being-rotated-out";

  it("binds a set previous token as a secret_text only, never in plain text or an output", async () => {
    const r = await recordStack("dev", { config: readStackFiles("dev"), secrets: { adminToken: ADMIN_TOKEN, adminTokenPrevious: PREVIOUS }, bundle: SNAPSHOT_BUNDLE });
    const secrets = findResource(r, T.version, "worker-secrets");
    expect(secrets.inputs.bindings).toContainEqual({ type: "secret_text", name: "ADMIN_TOKEN_PREVIOUS", text: SECRET });
    expect(secrets.secretInputs).toContain("bindings");
    // The release inherits it from the secrets version, like ADMIN_TOKEN: its value never reaches the release.
    expect(bindingsOf(r).find((b) => b.name === "ADMIN_TOKEN_PREVIOUS")).toEqual({ type: "inherit", name: "ADMIN_TOKEN_PREVIOUS", versionId: secrets.id });
    expect(r.secretOutputs).toEqual(["adminToken"]);
    expect(JSON.stringify(r)).not.toContain(PREVIOUS);
  });

  it("creates no empty secret binding for an empty previous token", async () => {
    const r = await recordStack("dev", { config: { ...readStackFiles("dev"), adminTokenPrevious: "" }, secrets: { adminToken: ADMIN_TOKEN }, bundle: SNAPSHOT_BUNDLE });
    expect(bindingsOf(r).map((b) => b.name)).not.toContain("ADMIN_TOKEN_PREVIOUS");
    expect(findResource(r, T.version, "worker-secrets").inputs.bindings).toEqual([{ type: "secret_text", name: "ADMIN_TOKEN", text: SECRET }]);
  });
});

describe("scoped admin tokens (adminTokens)", () => {
  const TOKENS = JSON.stringify([
    { name: "ci-purge", token: "purge-only-token-for-ci-0123456789", scopes: ["cache:purge"] },
    { name: "support", token: "support-desk-token-0123456789", scopes: ["sessions:revoke", "read"] },
  ]);

  it("binds a configured list as the secret_text ADMIN_TOKENS, inherited by the release, never in plain text or an output", async () => {
    const r = await recordStack("dev", { config: readStackFiles("dev"), secrets: { adminToken: ADMIN_TOKEN, adminTokens: TOKENS }, bundle: SNAPSHOT_BUNDLE });
    const secrets = findResource(r, T.version, "worker-secrets");
    expect(secrets.inputs.bindings).toContainEqual({ type: "secret_text", name: "ADMIN_TOKENS", text: SECRET });
    expect(secrets.secretInputs).toContain("bindings");
    expect(bindingsOf(r).find((b) => b.name === "ADMIN_TOKENS")).toEqual({ type: "inherit", name: "ADMIN_TOKENS", versionId: secrets.id });
    expect(r.secretOutputs).toEqual(["adminToken"]);
    expect(JSON.stringify(r)).not.toContain("purge-only-token");
  });

  it("binds nothing when the stack leaves adminTokens at its default (an empty list)", async () => {
    const r = await recordStack("dev", { config: { ...readStackFiles("dev"), adminTokens: "[]" }, secrets: { adminToken: ADMIN_TOKEN }, bundle: SNAPSHOT_BUNDLE });
    expect(bindingsOf(r).map((b) => b.name)).not.toContain("ADMIN_TOKENS");
  });

  it("refuses a malformed list before registering anything, naming the field and never the token", async () => {
    const bad = JSON.stringify([{ name: "ci", token: "too-short-secret", scopes: ["cache:purge"] }, { name: "x", token: "another-token-0123456789", scopes: ["everything"] }]);
    const registered: string[] = [];
    const error = await recordStack("dev", {
      config: readStackFiles("dev"),
      secrets: { adminToken: ADMIN_TOKEN, adminTokens: bad },
      bundle: SNAPSHOT_BUNDLE,
      onResource: (res) => registered.push(res.name),
    }).then(() => undefined, (e: Error) => e);
    expect(error?.message).toMatch(/config key "kv-worker-stack:adminTokens": 1\.scopes\.0: /);
    expect(error?.message).toContain("pulumi config set --secret adminTokens");
    expect(error?.message).not.toContain("another-token");
    expect(registered).toEqual([]);
  });
});
