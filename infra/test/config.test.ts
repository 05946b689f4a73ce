import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ROOT } from "../../worker/build";
import { DEFAULT_BACKUPS } from "../../worker/src/backup/config";
import { SNAPSHOT_BUNDLE } from "../../scripts/plan";
import { recordStack } from "../plan/record";
import { CONFIG_KEYS, ConfigError, PLACEHOLDER_ID, SECRET_KEYS, loadStackConfig, parseStackConfig, readStackFiles } from "../stack-file";

const prod = () => readStackFiles("prod");
const STABLE = "5f1d6b0e-8c1a-4e2b-9d3c-7a6f5e4d3c2b";
const expectError = (raw: Record<string, unknown>, key: string, detail: RegExp, options = {}) => {
  let error: unknown;
  try {
    parseStackConfig("prod", raw, options);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).message).toMatch(`stack "prod", config key "kv-worker-stack:${key}"`);
  expect((error as ConfigError).message).toMatch(detail);
};

describe("stack config validation", () => {
  it("accepts both committed stacks", () => {
    expect(loadStackConfig("dev").protect).toBe(false);
    expect(loadStackConfig("prod").protect).toBe(true);
  });

  it("refuses an unknown key", () => expectError({ ...prod(), originURL: "https://x.test" }, "originURL", /unknown key/));
  it("refuses a missing accountId", () => expectError({ ...prod(), accountId: undefined }, "accountId", /is required; set it with `pulumi config set accountId/));
  it("refuses a malformed accountId", () => expectError({ ...prod(), accountId: "my-account" }, "accountId", /32-character hex/));
  it("refuses a route pattern outside the zone", () =>
    expectError({ ...prod(), routes: ["example.org/api/*"] }, "routes[0]", /outside the zone "example.com"/));
  it("refuses a route that looks like a URL", () =>
    expectError({ ...prod(), routes: ["https://example.com/*"] }, "routes[0]", /must not include a scheme/));
  it("refuses routes without a zoneId", () => expectError({ ...prod(), zoneId: "" }, "zoneId", /required when routes/));
  it("refuses a bad custom-domain hostname", () =>
    expectError({ ...prod(), customDomains: ["api_example.com"] }, "customDomains[0]", /not a valid hostname/));
  it("refuses a custom domain outside the zone", () =>
    expectError({ ...prod(), customDomains: ["api.example.org"] }, "customDomains[0]", /outside the zone/));
  it("refuses a flag percentage out of range", () =>
    expectError({ ...prod(), flags: { beta: { enabled: true, percentage: 150 } } }, "flags.beta.percentage", /100/));
  it("refuses a flag that is not a flag", () => expectError({ ...prod(), flags: { beta: { on: true } } }, "flags.beta.enabled", /received undefined/));
  it("refuses a flagd definition flagd's schema refuses, naming the stack, the flag and the path", () =>
    expectError(
      { ...prod(), flags: { banner: { state: "ENABLED", variants: { a: "x" }, defaultVariant: "a", targeting: { sem_ver: [{ var: "v" }, "==", "1.0.0"] } } } },
      "flags.banner",
      /at \/targeting\/sem_ver\/1: must be equal to one of the allowed values/,
    ));
  it("refuses a default variant that is not one of the variants", () =>
    expectError({ ...prod(), flags: { banner: { state: "ENABLED", variants: { a: "x" }, defaultVariant: "b" } } }, "flags.banner", /at \/defaultVariant/));
  it("refuses a flagsFile with a bad flag, naming the file, the flag and the path", () => {
    const root = mkdtempSync(join(tmpdir(), "stack-"));
    for (const file of ["Pulumi.yaml"]) copyFileSync(join(ROOT, file), join(root, file));
    writeFileSync(join(root, "flags.json"), JSON.stringify({ flags: { banner: { state: "ON", variants: { a: 1 } } } }));
    expectError({ ...prod(), flagsFile: "flags.json" }, "flagsFile", /flags.json: flags.banner at \/state/, { root });
  });
  it("reads flagd definitions, $evaluators and a flagsFile into the flags declared as code", () => {
    const root = mkdtempSync(join(tmpdir(), "stack-"));
    writeFileSync(join(root, "flags.json"), JSON.stringify({ flags: { typed: { state: "ENABLED", variants: { n: 3 }, defaultVariant: "n" } }, $evaluators: { beta: { "==": [1, 1] } } }));
    const inline = { old: { enabled: true, percentage: 5 }, banner: { state: "ENABLED", variants: { a: "x" }, defaultVariant: "a", targeting: { if: [{ $ref: "beta" }, "a", null] } } };
    const config = parseStackConfig("prod", { ...prod(), flags: inline, flagsFile: "flags.json" }, { root });
    expect(config.flags).toEqual({ ...inline, typed: { state: "ENABLED", variants: { n: 3 }, defaultVariant: "n" } });
    expect(config.evaluators).toEqual({ beta: { "==": [1, 1] } });
  });
  it("refuses a TTL below KV's minimum", () => expectError({ ...prod(), sessionTtlSeconds: 30 }, "sessionTtlSeconds", /out of range \[60,/));
  it("refuses an absolute session lifetime shorter than the session TTL", () =>
    expectError({ ...prod(), sessionTtlSeconds: 7200, sessionMaxLifetimeSeconds: 3600 }, "sessionMaxLifetimeSeconds", /shorter than sessionTtlSeconds/));
  it("refuses a non-https origin", () => expectError({ ...prod(), originUrl: "http://origin.test" }, "originUrl", /https:\/\//));
  it("refuses a stack with no way to reach the Worker", () =>
    expectError({ ...prod(), routes: [], customDomains: [], workersDev: false }, "customDomains", /no URL/));
  it("refuses a rollout below 100 % without a stable version, naming the key", () =>
    expectError({ ...prod(), rollout: { percent: 10 } }, "rollout.stableVersionId", /required when rollout.percent is 10/));
  it("refuses a rollout percent that is not an integer from 0 to 100", () => {
    expectError({ ...prod(), rollout: { percent: 101 } }, "rollout.percent", /integer from 0 to 100/);
    expectError({ ...prod(), rollout: { percent: 12.5, stableVersionId: STABLE } }, "rollout.percent", /integer from 0 to 100/);
  });
  it("refuses a backups setting that backs up CACHE, names an unknown namespace, or has no valid schedule or retention", () => {
    const backups = { schedule: "0 3 * * *", retainDays: 30, namespaces: ["CONFIG"] };
    expectError({ ...prod(), backups: { ...backups, namespaces: ["CONFIG", "CACHE"] } }, "backups.namespaces.1", /CACHE is never backed up/);
    expectError({ ...prod(), backups: { ...backups, namespaces: ["FLAGS"] } }, "backups.namespaces.0", /must be one of SESSIONS, CONFIG/);
    expectError({ ...prod(), backups: { ...backups, schedule: "daily" } }, "backups.schedule", /five fields/);
    expectError({ ...prod(), backups: { ...backups, retainDays: 0 } }, "backups.retainDays", /1/);
    expectError({ ...prod(), backups: { ...backups, keep: 3 } }, "backups.keep", /unknown key; the keys are schedule, retainDays, namespaces, lock/);
    expectError({ ...prod(), backups: { retainDays: 30, namespaces: [] } }, "backups.schedule", /is required/);
  });
  it("takes Pulumi.yaml's backups default when a stack sets none, and the same default in code", () => {
    const project = parseYaml(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as { config: { backups: { default: unknown } } };
    expect(project.config.backups.default).toEqual(DEFAULT_BACKUPS);
    expect(loadStackConfig("dev").backups).toEqual(DEFAULT_BACKUPS);
    expect(loadStackConfig("prod").backups).toMatchObject({ namespaces: ["CONFIG", "SESSIONS"], lock: true });
  });
  it("refuses a stable version that is not a version id, and unknown rollout keys", () => {
    expectError({ ...prod(), rollout: { percent: 0, stableVersionId: "v1" } }, "rollout.stableVersionId", /version id/);
    expectError({ ...prod(), rollout: { percentage: 10 } }, "rollout.percentage", /unknown key/);
  });
  it("defaults the rollout to 100 % and reads it as Pulumi passes it (JSON)", () => {
    expect(parseStackConfig("prod", prod()).rollout).toEqual({ percent: 100 });
    expect(parseStackConfig("prod", { ...prod(), rollout: JSON.stringify({ percent: 0, stableVersionId: STABLE.toUpperCase() }) }).rollout).toEqual({
      percent: 0,
      stableVersionId: STABLE,
    });
  });
  it("refuses an adopted namespace id that is not a KV namespace id", () =>
    expectError({ ...prod(), adoptedNamespaces: { SESSIONS: { id: "not-hex" } } }, "adoptedNamespaces.SESSIONS.id", /32 lower-case hex/));
  it("refuses one namespace adopted for two bindings", () => {
    const id = "a".repeat(32);
    expectError({ ...prod(), adoptedNamespaces: { SESSIONS: { id }, CACHE: { id: "b".repeat(32), previewId: id } } }, "adoptedNamespaces.CACHE.previewId", /already adopted as adoptedNamespaces\.SESSIONS\.id/);
  });
  it("refuses adopting a binding the Worker does not have", () =>
    expectError({ ...prod(), adoptedNamespaces: { USERS: { id: "a".repeat(32) } } }, "adoptedNamespaces.USERS", /unknown binding/));
  it("refuses the placeholder IDs only when deploying", () => {
    expect(parseStackConfig("prod", prod()).accountId).toBe(PLACEHOLDER_ID);
    expectError(prod(), "accountId", /still the placeholder/, { deploying: true });
  });
  it("reads values as Pulumi passes them: strings and JSON", () => {
    const config = parseStackConfig("prod", {
      ...prod(),
      protect: "false",
      sessionTtlSeconds: "120",
      routes: JSON.stringify(["example.com/v2/*"]),
      flags: JSON.stringify({ beta: { enabled: true } }),
    });
    expect(config).toMatchObject({ protect: false, sessionTtlSeconds: 120, routes: ["example.com/v2/*"], flags: { beta: { enabled: true } } });
  });

  it("Pulumi.yaml declares exactly the keys the program reads", () => {
    const project = parseYaml(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as { config: Record<string, { secret?: boolean }> };
    expect(Object.keys(project.config).sort()).toEqual([...CONFIG_KEYS, ...SECRET_KEYS].sort());
    expect(project.config.adminToken?.secret).toBe(true);
    // Optional: a default, and no `secret: true`, which the CLI would enforce on that default (see cli-config.test.ts).
    expect(project.config.adminTokenPrevious).toMatchObject({ type: "string", default: "" });
    expect(project.config.adminTokenPrevious?.secret).toBeUndefined();
  });
});

describe("the program on a bad config", () => {
  const attempt = async (config: Record<string, unknown>, secrets?: Record<string, string>) => {
    const registered: string[] = [];
    const run = recordStack("prod", { config, ...(secrets ? { secrets } : {}), bundle: SNAPSHOT_BUNDLE, onResource: (r) => registered.push(r.name) });
    return { error: await run.then(() => undefined, (e: Error) => e), registered };
  };

  it("stops before registering any resource, naming the stack and the key", async () => {
    const { error, registered } = await attempt({ ...prod(), flags: { beta: { enabled: true, percentage: -1 } } }, { adminToken: "t" });
    expect(error?.message).toMatch(`stack "prod", config key "kv-worker-stack:flags.beta.percentage"`);
    expect(registered).toEqual([]);
  });

  it("stops without an admin token, giving the command that sets it", async () => {
    const { error, registered } = await attempt(prod());
    expect(error?.message).toMatch("pulumi config set --secret adminToken <token> --stack prod");
    expect(registered).toEqual([]);
  });
});
