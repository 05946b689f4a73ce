import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeEach, describe, expect, it } from "vitest";
import { recordStack } from "../../infra/plan/record";
import { loadStackConfig, readStackFiles } from "../../infra/stack-file";
import { type AdoptOptions, adopt } from "../adopt";
import { ROOT } from "../build";
import { SNAPSHOT_BUNDLE } from "../plan";

const FIXTURES = join(ROOT, "scripts/test/fixtures/wrangler");
const TEMPLATE = join(FIXTURES, "wrangler.toml");
const NAMESPACE = "cloudflare:index/workersKvNamespace:WorkersKvNamespace";
const ACCOUNT = "0".repeat(32);

/** The template's namespace ids: top level (dev) and [env.production]. */
const IDS = {
  dev: {
    SESSIONS: ["3f1c7a9e2b4d4e6f8a0b1c2d3e4f5a6b", "9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"],
    CACHE: ["4a2d8b0f3c5e4f7a9b1c2d3e4f5a6b7c", "8b7c6d5e4f3a42103b2c3d4e5f6a7b8c"],
    CONFIG: ["5b3e9c1a4d6f4a8b0c2d3e4f5a6b7c8d", "7c6d5e4f3a2b41f04c3d4e5f6a7b8c9d"],
  },
  prod: {
    SESSIONS: ["6c4f0d2b5e7a4b9c1d3e4f5a6b7c8d9e", "6d5e4f3a2b1c40e05d4e5f6a7b8c9d0e"],
    CACHE: ["7d5a1e3c6f8b4c0d2e4f5a6b7c8d9e0f", "5e4f3a2b1c0d49f06e5f6a7b8c9d0e1f"],
    CONFIG: ["8e6b2f4d7a9c4d1e3f5a6b7c8d9e0f1a", "4f3a2b1c0d9e48e07f6a7b8c9d0e1f2a"],
  },
};

/** A scratch checkout: Pulumi.yaml and the committed stack files, so adoption never touches the repository's. */
let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "adopt-"));
  for (const file of ["Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"]) copyFileSync(join(ROOT, file), join(root, file));
  // The flagd file Pulumi.prod.yaml's flagsFile names.
  mkdirSync(join(root, "flags"));
  copyFileSync(join(ROOT, "flags/prod.flagd.json"), join(root, "flags/prod.flagd.json"));
});

const run = (options: Omit<AdoptOptions, "root">) => adopt({ root, ...options });
const stackText = (stack: string) => readFileSync(join(root, `Pulumi.${stack}.yaml`), "utf8");
const record = (stack: string) =>
  recordStack(stack, { config: readStackFiles(stack, root), secrets: { adminToken: "t" }, bundle: SNAPSHOT_BUNDLE });

/** Runs adopt expecting a refusal; checks the message and that the stack file is byte for byte unchanged. */
function expectRefusal(options: Omit<AdoptOptions, "root">, message: RegExp) {
  const before = stackText(options.stack);
  expect(() => run(options)).toThrow(message);
  expect(stackText(options.stack)).toBe(before);
}

/** The template with one edit, in the scratch folder. */
const variant = (name: string, edit: (text: string) => string) => {
  const path = join(root, name);
  writeFileSync(path, edit(readFileSync(TEMPLATE, "utf8")));
  return path;
};

describe("npm run adopt: Cloudflare's KV template", () => {
  it("writes the top level's namespaces, worker and vars into the dev stack", () => {
    const lines: string[] = [];
    const { written, unmapped } = run({ stack: "dev", from: TEMPLATE, log: (line) => lines.push(line) });
    const config = loadStackConfig("dev", { root });
    expect(config.adoptedNamespaces).toEqual(
      Object.fromEntries(Object.entries(IDS.dev).map(([b, [id, previewId]]) => [b, { id, previewId }])),
    );
    expect(config).toMatchObject({
      workerName: "kv-worker",
      compatibilityDate: "2026-03-01",
      compatibilityFlags: ["nodejs_compat"],
      routes: [],
      customDomains: [],
      workersDev: true,
      originUrl: "https://dummyjson.com",
      sessionTtlSeconds: 3600,
    });
    expect(config.flags).toHaveProperty("new-checkout"); // the rest of the stack file is kept
    expect(written).not.toHaveProperty("accountId");
    expect(unmapped).toEqual(
      expect.arrayContaining([expect.stringMatching(/^vars\.LOG_LEVEL: /), expect.stringMatching(/^vars\.ENVIRONMENT: set by the stack/), expect.stringMatching(/^main: /)]),
    );
    const output = lines.join("\n");
    expect(output).toMatch(/Read .*wrangler\.toml \(top level\)/);
    expect(output).toMatch(/Wrote Pulumi\.dev\.yaml:/);
    expect(output).toMatch(/Not mapped:\n {2}/);
    expect(output).toMatch(/pulumi preview --stack dev .*no namespace created/);
  });

  it("resolves [env.production] as wrangler does: own bindings and vars, inherited compatibility, <name>-production", () => {
    run({ stack: "prod", from: TEMPLATE, env: "production" });
    const config = loadStackConfig("prod", { root });
    expect(config.adoptedNamespaces.SESSIONS).toEqual({ id: IDS.prod.SESSIONS[0], previewId: IDS.prod.SESSIONS[1] });
    expect(config).toMatchObject({
      workerName: "kv-worker-production",
      compatibilityDate: "2026-03-01",
      routes: ["example.com/api/*"],
      customDomains: ["api.example.com"],
      zoneName: "example.com",
      workersDev: false,
      cacheTtlSeconds: 600,
      sessionTtlSeconds: 86_400, // SESSION_TTL_SECONDS is a top-level var, and vars are not inherited
    });
  });

  it.each(["wrangler.json", "wrangler.jsonc"])("reads %s to the same result as the TOML", (file) => {
    const fromToml = run({ stack: "prod", from: TEMPLATE, env: "production" }).written;
    const fromJson = run({ stack: "prod", from: join(FIXTURES, file), env: "production" }).written;
    expect(fromJson).toEqual(fromToml);
  });

  it("makes the program import every namespace with <account_id>/<id> and create none in its place", async () => {
    run({ stack: "dev", from: TEMPLATE });
    const namespaces = (await record("dev")).resources.filter((r) => r.type === NAMESPACE);
    expect(namespaces).toHaveLength(6);
    for (const [binding, [id, previewId]] of Object.entries(IDS.dev)) {
      for (const [name, expected] of [[`kv-${binding.toLowerCase()}`, id], [`kv-${binding.toLowerCase()}-preview`, previewId]]) {
        const ns = namespaces.find((r) => r.name === name);
        expect(ns, name).toMatchObject({ importId: `${ACCOUNT}/${expected}`, id: expected, protect: true, retainOnDelete: true, ignoreChanges: ["title"] });
      }
    }
    expect(namespaces.filter((r) => !r.importId)).toEqual([]);
  });

  it("imports with the current titles when they are given, so the import's inputs match", async () => {
    run({ stack: "dev", from: TEMPLATE, titles: { SESSIONS: "kv-worker-SESSIONS", "SESSIONS:preview": "kv-worker-SESSIONS_preview" } });
    const recording = await record("dev");
    const sessions = recording.resources.find((r) => r.name === "kv-sessions");
    expect(sessions?.inputs.title).toBe("kv-worker-SESSIONS");
    expect(sessions?.ignoreChanges).toBeUndefined();
    expect(recording.resources.find((r) => r.name === "kv-sessions-preview")?.inputs.title).toBe("kv-worker-SESSIONS_preview");
  });

  it("adopts a namespace without a preview_id and says the stack creates that preview namespace", async () => {
    const { unmapped } = run({ stack: "dev", from: variant("wrangler.toml", (t) => t.replace('preview_id = "8b7c6d5e4f3a42103b2c3d4e5f6a7b8c"\n', "")) });
    expect(unmapped).toContain("kv_namespaces[1] CACHE has no preview_id: the stack creates an empty preview namespace for it");
    const preview = (await record("dev")).resources.find((r) => r.name === "kv-cache-preview");
    expect(preview?.importId).toBeUndefined();
    expect(preview?.inputs.title).toBe("kv-worker-stack-dev-cache-preview");
  });
});

describe("npm run adopt for a stack without a stack file", () => {
  it("creates Pulumi.<stack>.yaml when the wrangler config gives what the stack requires", () => {
    const account = "c".repeat(32);
    run({ stack: "staging", from: variant("wrangler.toml", (t) =>
          t.replace('name = "kv-worker"', `name = "kv-worker"\naccount_id = "${account}"\nroutes = [{ pattern = "kv.example.com", custom_domain = true, zone_name = "example.com" }]`)) });
    expect(stackText("staging")).toMatch(/^# Stack "staging", adopted from .*wrangler\.toml by `npm run adopt`\./);
    expect(loadStackConfig("staging", { root })).toMatchObject({ accountId: account, customDomains: ["kv.example.com"], workersDev: true, adoptedNamespaces: { CONFIG: { id: IDS.dev.CONFIG[0] } } });
  });

  it("refuses, creating nothing, when the stack would lack a required key", () => {
    expect(() => run({ stack: "staging", from: TEMPLATE })).toThrow(/→ Pulumi\.staging\.yaml: stack "staging", config key "kv-worker-stack:accountId": is required.*nothing was written/);
    expect(existsSync(join(root, "Pulumi.staging.yaml"))).toBe(false);
  });
});

describe("npm run adopt refuses bad input and writes nothing", () => {
  it("a missing file", () => expectRefusal({ stack: "dev", from: join(root, "nope.toml") }, /nope\.toml: no such file/));
  it("invalid TOML, naming the line", () =>
    expectRefusal({ stack: "dev", from: variant("wrangler.toml", (t) => t.replace('name = "kv-worker"', 'name = "kv-worker')) }, /wrangler\.toml: invalid TOML at line 5/));
  it("invalid JSON, naming the line", () => {
    const path = join(root, "wrangler.json");
    writeFileSync(path, '{\n  "name": "kv-worker",\n  "kv_namespaces": [\n}\n');
    expectRefusal({ stack: "dev", from: path }, /wrangler\.json: invalid JSON at line 4/);
  });
  it("a missing binding", () =>
    expectRefusal({ stack: "dev", from: variant("wrangler.toml", (t) => t.replace('binding = "CONFIG"', 'binding = "SETTINGS"')) }, /wrangler\.toml, key kv_namespaces: no namespace is bound as CONFIG/));
  it("an id that is not 32 hex characters", () =>
    expectRefusal({ stack: "dev", from: variant("wrangler.toml", (t) => t.replace("4a2d8b0f3c5e4f7a9b1c2d3e4f5a6b7c", "<CACHE_ID>")) }, /wrangler\.toml, key kv_namespaces\[1\]\.id: "<CACHE_ID>" is not a KV namespace id/));
  it("a preview_id that is not 32 hex characters, inside an environment", () =>
    expectRefusal(
      { stack: "prod", env: "production", from: variant("wrangler.toml", (t) => t.replace("6d5e4f3a2b1c40e05d4e5f6a7b8c9d0e", "abc")) },
      /key env\.production\.kv_namespaces\[0\]\.preview_id: "abc"/,
    ));
  it("an unknown --env, listing the ones there are", () =>
    expectRefusal({ stack: "prod", from: TEMPLATE, env: "staging" }, /wrangler\.toml: no environment "staging" \(env\.staging\); the file has "production"/));
  it("an environment without its own namespaces, since wrangler does not inherit them", () =>
    expectRefusal(
      { stack: "prod", env: "production", from: variant("wrangler.toml", (t) => t.replaceAll("[[env.production.kv_namespaces]]", "[[env.production.other]]")) },
      /key env\.production\.kv_namespaces: no namespace is bound as SESSIONS \(the top level binds namespaces, but wrangler does not inherit/,
    ));
  it("a stack that already adopted different ids", () => {
    run({ stack: "dev", from: TEMPLATE });
    expectRefusal({ stack: "dev", from: TEMPLATE, env: "production" }, /Pulumi\.dev\.yaml, key kv-worker-stack:adoptedNamespaces\.SESSIONS\.id: the stack already adopts 3f1c/);
  });
  it("a result the program would refuse (a route outside the stack's zone)", () =>
    expectRefusal(
      { stack: "prod", env: "production", from: variant("wrangler.toml", (t) => t.replace('zone_name = "example.com"', 'zone_name = "example.org"').replace("example.com/api/*", "example.org/api/*")) },
      /→ Pulumi\.prod\.yaml: .*customDomains\[0\].*outside the zone "example\.org"; nothing was written/,
    ));

  it("exits 1 from the command line with one line naming the file and key", async () => {
    const from = variant("wrangler.toml", (t) => t.replace("5b3e9c1a4d6f4a8b0c2d3e4f5a6b7c8d", "xyz"));
    const before = readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8");
    const error = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/adopt.ts", "--stack", "dev", "--from", from], { cwd: ROOT }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.code).toBe(1);
    expect(error?.stderr.trim()).toBe(`adopt: ${from}, key kv_namespaces[2].id: "xyz" is not a KV namespace id (32 hex characters)`);
    expect(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")).toBe(before);
  });
});
