/**
 * The program run the way `pulumi preview` runs it: Pulumi's own Node.js
 * runtime (`node --import tsx @pulumi/pulumi/cmd/run`), started in the
 * program's directory, config in environment variables, talking gRPC to an
 * engine the test plays (./runtime/). The mock-engine tests (program.test.ts)
 * import the program themselves; this one catches what only the real entry
 * shows: how the program is found and loaded, paths seen from the directory
 * Pulumi runs it and its providers in, warnings, dependencies and secrets as
 * the engine receives them.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { KV_BINDINGS, SECRETS } from "../../worker/src/contract";
import { BUNDLE_PATH, readManifest } from "../../worker/build";
import { PLACEHOLDER_ID, PROJECT, type StackConfig, loadStackConfig, readStackFiles } from "../stack-file";
import { CliConfigError } from "../cli-config";
import { type Registration, SECRET } from "./runtime/engine";
import { type ProgramRun, runProgram } from "./runtime/language-host";
import { walkthroughCommands } from "./runtime/walkthrough";

// The resource types, names and inputs these tests name, in one place: what
// changes here when the Worker's resources change.
const T = {
  stack: "pulumi:pulumi:Stack",
  namespaces: `${PROJECT}:cloudflare:KvNamespaces`,
  flags: `${PROJECT}:cloudflare:FeatureFlags`,
  worker: `${PROJECT}:cloudflare:WorkerService`,
  namespace: "cloudflare:index/workersKvNamespace:WorkersKvNamespace",
  kv: "cloudflare:index/workersKv:WorkersKv",
  script: "cloudflare:index/worker:Worker",
  version: "cloudflare:index/workerVersion:WorkerVersion",
  deployment: "cloudflare:index/workersDeployment:WorkersDeployment",
  route: "cloudflare:index/workersRoute:WorkersRoute",
  domain: "cloudflare:index/workersCustomDomain:WorkersCustomDomain",
  backups: `${PROJECT}:cloudflare:BackupBucket`,
  bucket: "cloudflare:index/r2Bucket:R2Bucket",
  lifecycle: "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle",
  lock: "cloudflare:index/r2BucketLock:R2BucketLock",
  cron: "cloudflare:index/workersCronTrigger:WorkersCronTrigger",
};
/** The resources under the `backups` component, as [type, name]. */
const backupResources = (config: StackConfig) => [
  [T.bucket, "backups-bucket"],
  [T.lifecycle, "backups-lifecycle"],
  ...(config.backups.lock ? [[T.lock, "backups-lock"]] : []),
];
/** The resources under the `worker` component, as [type, name]. */
const workerResources = (config: StackConfig) => [
  [T.script, "worker-script"],
  [T.version, "worker-secrets"],
  [T.version, "worker-version"],
  [T.deployment, "worker-deployment"],
  ...config.routes.map((p) => [T.route, `worker-route-${p}`]),
  ...config.customDomains.map((h) => [T.domain, `worker-domain-${h}`]),
  [T.cron, "worker-cron"],
];
/** Resources that send traffic to a version, and the one resource each must wait for. */
const TRAFFIC: Record<string, string> = {
  [T.deployment]: "worker-version",
  [T.route]: "worker-deployment",
  [T.domain]: "worker-deployment",
  [T.cron]: "worker-deployment",
};
/** Versions are immutable and may still serve or be rolled back to: never deleted by a replacement. */
const RETAINED = [T.version];
type Binding = { type: string; name: string; namespaceId?: string; text?: string };
const bindingsOf = (r: Registration) => (Array.isArray(r.inputs.bindings) ? (r.inputs.bindings as Binding[]) : []);
/** Every resource that carries the Worker's KV bindings (found by the input, whatever its type). */
const bindingHolders = (run: ProgramRun) => run.registrations.filter((r) => bindingsOf(r).some((b) => b.type === "kv_namespace"));
/** The resource that holds the admin token's value (found by the input, whatever its type). */
const secretHolders = (run: ProgramRun) => run.registrations.filter((r) => bindingsOf(r).some((b) => b.type === "secret_text"));

/** What a new user types for the walkthrough's `<placeholders>`: real-looking Cloudflare IDs. */
const TYPED_IN: Record<string, string> = { "account-id": "3f1c9e0d2b7a4c6e8f0a1b2c3d4e5f60", "zone-id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9" };
/** docs/deploy.md's first-deployment `pulumi config set` commands, per stack, as the runs below applied them. */
const walkthrough = Object.fromEntries(["dev", "prod"].map((stack) => [stack, walkthroughCommands(stack, TYPED_IN)]));

function find(run: ProgramRun, type: string, name: string): Registration {
  const found = run.registrations.find((r) => r.type === type && r.name === name);
  if (!found) throw new Error(`no ${type} named ${name}; registered:\n  ${run.registrations.map((r) => `${r.type} ${r.name}`).join("\n  ")}`);
  return found;
}

/** Every object, at any depth of any resource's inputs, with a `contentFile` input. */
function contentFiles(run: ProgramRun): { resource: string; path: string; sha256: unknown }[] {
  const found: { resource: string; path: string; sha256: unknown }[] = [];
  const visit = (resource: string, value: unknown) => {
    if (Array.isArray(value)) value.forEach((item) => visit(resource, item));
    else if (typeof value === "object" && value !== null) {
      const object = value as Record<string, unknown>;
      if (typeof object.contentFile === "string") found.push({ resource, path: object.contentFile, sha256: object.contentSha256 });
      Object.values(object).forEach((item) => visit(resource, item));
    }
  };
  for (const r of run.registrations) visit(`${r.type} ${r.name}`, r.inputs);
  return found;
}

// Each stack exactly as shipped, after exactly the commands docs/deploy.md's first deployment runs, then the CLI's config phase.
const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  for (const stack of ["dev", "prod"]) runs[stack] = await runProgram(stack, { commands: walkthrough[stack] });
}, 120_000);

describe.each(["dev", "prod"])("stack %s after docs/deploy.md's first-deployment commands, through Pulumi's Node.js runtime over gRPC", (stack) => {
  it("the walkthrough's commands set the placeholder IDs and the admin token as a secret, and the CLI's config phase warns of nothing", () => {
    // Every key the stack file still holds as the all-zero placeholder is one the walkthrough tells the user to set.
    const placeholders = Object.entries(readStackFiles(stack)).filter(([, value]) => value === PLACEHOLDER_ID).map(([key]) => key);
    const commands = walkthrough[stack]!;
    expect(placeholders.filter((key) => !commands.some((c) => c.key === key && !c.secret && c.value !== PLACEHOLDER_ID))).toEqual([]);
    expect(commands.find((c) => c.key === "adminToken")).toMatchObject({ secret: true, value: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(runs[stack]!.configWarnings).toEqual([]);
  });

  it("loads under the runtime's own loader, runs to the end and exits 0, asking nothing the engine lacks", () => {
    const run = runs[stack]!;
    expect({ exitCode: run.exitCode, stderr: run.stderr, unexpectedCalls: run.unexpectedCalls }).toEqual({ exitCode: 0, stderr: "", unexpectedCalls: [] });
    // cmd/run wraps the program in the stack resource and registers its outputs last.
    expect(run.registrations[0]).toMatchObject({ type: T.stack, name: `${PROJECT}-${stack}`, parent: undefined });
    // The program's default export ran: its outputs, not the module's exports, are the stack's.
    expect(run.outputs).toMatchObject({ environment: stack });
  });

  it("prints no warning or error", () => {
    expect(runs[stack]!.logs.filter((log) => log.severity !== "info")).toEqual([]);
  });

  it("registers exactly the expected resources, each under its component", () => {
    const config = loadStackConfig(stack);
    const expected = [
      [T.stack, `${PROJECT}-${stack}`, undefined],
      ...[T.namespaces, T.flags, T.backups, T.worker].map((type, i) => [type, ["kv", "flags", "backups", "worker"][i], `${PROJECT}-${stack}`]),
      ...backupResources(config).map(([type, name]) => [type, name, "backups"]),
      ...KV_BINDINGS.flatMap((b) => [[T.namespace, `kv-${b.toLowerCase()}`, "kv"], [T.namespace, `kv-${b.toLowerCase()}-preview`, "kv"]]),
      ...Object.keys(config.flags).map((f) => [T.kv, `flags-${f}`, "flags"]),
      ...Object.keys(config.evaluators).map((e) => [T.kv, `flags-$${e}`, "flags"]),
      ...workerResources(config).map(([type, name]) => [type, name, "worker"]),
    ];
    const registered = runs[stack]!.registrations.map((r) => [r.type, r.name, r.parent]);
    const key = (row: unknown[]) => row.join(" ");
    expect(registered.map(key).sort()).toEqual(expected.map(key).sort());
  });

  it("binds SESSIONS, CACHE and CONFIG to the production namespaces' IDs and waits for them", () => {
    const run = runs[stack]!;
    const holders = bindingHolders(run);
    expect(holders.length).toBeGreaterThan(0);
    for (const holder of holders) {
      const kvBindings = bindingsOf(holder).filter((b) => b.type === "kv_namespace");
      expect(kvBindings.map((b) => [b.name, b.namespaceId])).toEqual(KV_BINDINGS.map((b) => [b, find(run, T.namespace, `kv-${b.toLowerCase()}`).id]));
      expect(holder.dependencies.filter((name) => name.startsWith("kv-"))).toEqual(KV_BINDINGS.map((b) => `kv-${b.toLowerCase()}`).sort());
    }
    const traffic = run.registrations.filter((r) => r.type in TRAFFIC);
    expect(traffic.length).toBeGreaterThan(0);
    for (const r of traffic) expect(r.dependencies, r.name).toContain(TRAFFIC[r.type]);
    for (const r of run.registrations.filter((r) => r.type === T.kv)) expect(r.dependencies, r.name).toEqual(["kv-config"]);
  });

  it("hands the provider a contentFile that resolves to dist/worker.js from the directory it runs in, with its sha256", async () => {
    const run = runs[stack]!;
    const files = contentFiles(run);
    const manifest = await readManifest();
    const bytes = readFileSync(BUNDLE_PATH);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      // The provider plugin runs in the program's directory (`newPlugin(ctx, ctx.Pwd, …)`), infra/ for `main: infra/`.
      expect({ ...file, path: resolve(run.pwd, file.path) }).toEqual({ ...file, path: BUNDLE_PATH });
      if (file.sha256 !== undefined) expect(file.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
    expect(run.outputs?.bundleSha256).toBe(manifest?.sha256);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(manifest?.sha256);
  });

  it("sends the admin token as a secret: only its binding's text is marked, the output is secret, plain text never leaves", () => {
    const run = runs[stack]!;
    const holders = secretHolders(run);
    expect(holders.length).toBe(1);
    for (const holder of holders) {
      const bindings = bindingsOf(holder);
      const index = bindings.findIndex((b) => b.name === SECRETS.adminToken);
      expect(bindings[index]).toEqual({ type: "secret_text", name: SECRETS.adminToken, text: SECRET });
      expect(holder.secretPaths).toEqual([`bindings[${index}].text`]);
    }
    // The releases inherit the token by reference; no other input is secret.
    for (const holder of bindingHolders(run)) {
      expect(bindingsOf(holder).find((b) => b.name === SECRETS.adminToken)).toMatchObject({ type: "inherit" });
    }
    expect(run.registrations.filter((r) => !holders.includes(r)).flatMap((r) => r.secretPaths)).toEqual([]);
    expect(run.secretOutputs).toEqual(["adminToken"]);
    expect(JSON.stringify(run)).not.toContain(walkthrough[stack]!.find((c) => c.key === "adminToken")!.value);
  });

  it("protects and retains the production namespaces in prod only, never the preview ones, retains versions, and imports nothing", () => {
    const run = runs[stack]!;
    for (const r of run.registrations) {
      // The backups bucket is kept like the namespaces: it holds their only copy.
      const production = (r.type === T.namespace || r.type === T.bucket) && !r.name.endsWith("-preview") && stack === "prod";
      expect({ name: r.name, protect: r.protect, retain: r.retainOnDelete, importId: r.importId }).toEqual({
        name: r.name,
        protect: production,
        retain: production || RETAINED.includes(r.type),
        importId: undefined,
      });
    }
  });

  it("exports the stack outputs with the IDs the engine assigned", () => {
    const run = runs[stack]!;
    const config = loadStackConfig(stack);
    const version = find(run, T.version, "worker-version").id;
    const ids = (suffix: string) => Object.fromEntries(KV_BINDINGS.map((b) => [b, find(run, T.namespace, `kv-${b.toLowerCase()}${suffix}`).id]));
    expect(run.outputs).toEqual({
      environment: stack,
      workerName: config.workerName,
      url: stack === "dev" ? `https://${config.workerName}.${config.workersDevSubdomain}.workers.dev` : `https://${config.customDomains[0]}`,
      ...(stack === "dev" ? { workersDevUrl: `https://${config.workerName}.${config.workersDevSubdomain}.workers.dev` } : {}),
      customDomainUrls: config.customDomains.map((h) => `https://${h}`),
      bundleSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      activeVersionId: version,
      candidateVersionId: version,
      deployment: [{ versionId: version, percent: 100 }],
      // The version's URL comes from the provider (`urls`), so a preview does not know it yet.
      ...(stack === "dev" ? { versionUrl: "<unknown>" } : {}),
      namespaceIds: ids(""),
      previewNamespaceIds: ids("-preview"),
      backupBucket: `${PROJECT}-${stack}-backups`,
      adminToken: SECRET,
    });
  });
});

describe("provider plugin", () => {
  it("every Cloudflare resource asks for the provider version of the installed @pulumi/cloudflare", () => {
    // With `main: infra/`, the language host's GetRequiredPackages walks down
    // from infra/ and finds no node_modules, so this version is what the
    // engine loads (or installs) the default provider by.
    const { version } = JSON.parse(readFileSync(new URL(import.meta.resolve("@pulumi/cloudflare/package.json")), "utf8")) as { version: string };
    for (const run of Object.values(runs)) {
      const cloudflare = run.registrations.filter((r) => r.type.startsWith("cloudflare:"));
      expect(cloudflare.length).toBeGreaterThan(0);
      for (const r of cloudflare) expect({ name: r.name, version: r.version, provider: r.provider }).toEqual({ name: r.name, version, provider: undefined });
    }
  });
});

describe("the optional secret adminTokenPrevious, through the CLI's config phase and the runtime", () => {
  const PREVIOUS = "0ld-admin-token-being-rotated-out";

  it("absent (the walkthrough's commands only): the CLI applies its empty default and the Worker gets no previous token", () => {
    for (const run of Object.values(runs)) {
      expect(run.registrations.flatMap(bindingsOf).map((b) => b.name)).not.toContain(SECRETS.adminTokenPrevious);
    }
  });

  it("set with `pulumi config set --secret`: reaches the program as a secret and is bound as secret_text, never in plain text", async () => {
    const run = await runProgram("dev", { commands: [...walkthrough.dev!, { key: "adminTokenPrevious", value: PREVIOUS, secret: true }] });
    expect({ exitCode: run.exitCode, stderr: run.stderr, errors: run.logs.filter((l) => l.severity !== "info") }).toEqual({ exitCode: 0, stderr: "", errors: [] });
    const [holder, ...others] = secretHolders(run);
    expect(others).toEqual([]);
    const bindings = bindingsOf(holder!);
    const index = bindings.findIndex((b) => b.name === SECRETS.adminTokenPrevious);
    expect(bindings[index]).toEqual({ type: "secret_text", name: SECRETS.adminTokenPrevious, text: SECRET });
    expect(holder!.secretPaths).toContain(`bindings[${index}].text`);
    expect(JSON.stringify(run)).not.toContain(PREVIOUS);
  }, 60_000);

  it("set without --secret: the CLI lets it through (it has a default), so the program refuses it, naming the command", async () => {
    const run = await runProgram("dev", { commands: [...walkthrough.dev!, { key: "adminTokenPrevious", value: PREVIOUS }] });
    expect(run.exitCode).toBe(32);
    expect(run.logs.filter((log) => log.severity === "error").map((log) => log.message)).toEqual([
      `stack "dev", config key "${PROJECT}:adminTokenPrevious": is stored in plain text in Pulumi.dev.yaml; set it with \`pulumi config set --secret adminTokenPrevious <old token> --stack dev\``,
    ]);
    expect(run.registrations.filter((r) => r.custom)).toEqual([]);
  }, 60_000);
});

describe("the optional secret adminTokens (scoped tokens), through the CLI's config phase and the runtime", () => {
  const TOKENS = JSON.stringify([{ name: "ci-purge", token: "purge-only-token-0123456789", scopes: ["cache:purge"] }]);

  it("set with `pulumi config set --secret`: bound as secret_text ADMIN_TOKENS, the tokens never in plain text", async () => {
    const run = await runProgram("dev", { commands: [...walkthrough.dev!, { key: "adminTokens", value: TOKENS, secret: true }] });
    expect({ exitCode: run.exitCode, stderr: run.stderr, errors: run.logs.filter((l) => l.severity !== "info") }).toEqual({ exitCode: 0, stderr: "", errors: [] });
    const bindings = run.registrations.flatMap(bindingsOf);
    // In the secrets version as secret_text; each release inherits it from there.
    expect(bindings.filter((b) => b.name === SECRETS.adminTokens && b.type !== "inherit")).toEqual([{ type: "secret_text", name: SECRETS.adminTokens, text: SECRET }]);
    expect(JSON.stringify(run)).not.toContain("purge-only-token-0123456789");
  }, 60_000);

  it("set without --secret: the CLI lets it through (it has a default), so the program refuses it, naming the command", async () => {
    const run = await runProgram("dev", { commands: [...walkthrough.dev!, { key: "adminTokens", value: TOKENS }] });
    expect(run.exitCode).toBe(32);
    expect(run.logs.filter((log) => log.severity === "error").map((log) => log.message)).toEqual([
      `stack "dev", config key "${PROJECT}:adminTokens": is stored in plain text in Pulumi.dev.yaml; set it with \`pulumi config set --secret adminTokens '<json>' --stack dev\``,
    ]);
    expect(run.registrations.filter((r) => r.custom)).toEqual([]);
  }, 60_000);
});

describe("the shipped stack files without the walkthrough's commands, as a first `pulumi preview` would run them", () => {
  it("without any: the CLI refuses the stack for the missing admin token before it starts the program", async () => {
    for (const stack of ["dev", "prod"]) {
      await expect(runProgram(stack)).rejects.toThrow(new CliConfigError(`Stack '${stack}' is missing configuration value 'adminToken'`, "validating stack config"));
    }
  });

  it("without the account ID line: the program refuses the placeholder with the command that sets it, before registering anything", async () => {
    const run = await runProgram("dev", { commands: walkthrough.dev!.filter((c) => c.key !== "accountId") });
    // 32: the program has printed a message the user can act on, so the CLI adds nothing (execRuntime).
    expect(run.exitCode).toBe(32);
    expect(run.logs.filter((log) => log.severity === "error").map((log) => log.message)).toEqual([
      `stack "dev", config key "${PROJECT}:accountId": is still the placeholder; set it with \`pulumi config set accountId <id> --stack dev\``,
    ]);
    expect(run.registrations.filter((r) => r.custom)).toEqual([]);
  }, 60_000);
});
