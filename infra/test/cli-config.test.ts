/**
 * The Pulumi CLI's config phase (infra/cli-config.ts) on this project's own
 * Pulumi.yaml and stack files: what a real `pulumi preview` accepts, what it
 * refuses and in which words (the messages of pulumi/pulumi's
 * pkg/workspace/config.go and sdk/go/common/workspace/project.go). The runs
 * through Pulumi's runtime are in runtime.test.ts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { ROOT } from "../../worker/build";
import {
  BASE64_CRYPTER,
  CliConfigError,
  type Project,
  applyProjectConfig,
  configSet,
  loadProject,
  readStackDocument,
  stackConfigOf,
  stackFilePath,
} from "../cli-config";
import { CONFIG_KEYS, PROJECT, SECRET_KEYS } from "../stack-file";
import { type ConfigSetCommand, configPhase } from "./runtime/language-host";

const project = loadProject(ROOT);
const shipped = (stack: string) => readStackDocument(stackFilePath(ROOT, project, stack));
/** The shipped file with `config` entries replaced (undefined deletes), as YAML would parse it. */
const withConfig = (stack: string, changes: Record<string, unknown>) => {
  const doc = shipped(stack);
  const config = { ...(doc.config as Record<string, unknown>) };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete config[`${PROJECT}:${key}`];
    else config[`${PROJECT}:${key}`] = value;
  }
  return { ...doc, config };
};
const SECRET_TOKEN: ConfigSetCommand = { key: "adminToken", value: "a-token-set-with---secret", secret: true };
const refusal = (detail: string) => new CliConfigError(detail, "validating stack config");
const phase = (stack: string, changes: Record<string, unknown> = {}, commands = [SECRET_TOKEN]) =>
  configPhase(stack, { stackDocument: withConfig(stack, changes), commands });

describe("Pulumi.yaml's config declarations", () => {
  it("declares exactly the keys the program reads, and only accountId, originUrl and adminToken are required (no default)", () => {
    expect(Object.keys(project.config).sort()).toEqual([...CONFIG_KEYS, ...SECRET_KEYS].sort());
    const required = Object.entries(project.config).filter(([, d]) => d.default === undefined && d.value === undefined).map(([key]) => key);
    expect(required.sort()).toEqual(["accountId", "adminToken", "originUrl"]);
  });

  it("every key a shipped stack file sets is declared (the CLI would pass an undeclared one on; the program refuses it)", () => {
    for (const stack of ["dev", "prod"]) {
      const keys = Object.keys(shipped(stack).config as object);
      expect(keys.filter((key) => !key.startsWith(`${PROJECT}:`) || !(key.slice(PROJECT.length + 1) in project.config)), stack).toEqual([]);
    }
  });
});

describe("mergeConfig on the shipped stack files", () => {
  it.each(["dev", "prod"])("%s as shipped passes, once the admin token is set with --secret where the file lacks it", (stack) => {
    const doc = shipped(stack);
    const commands = `${PROJECT}:adminToken` in (doc.config as object) ? [] : [SECRET_TOKEN];
    expect(configPhase(stack, { stackDocument: doc, commands }).warnings).toEqual([]);
  });

  it.each(["dev", "prod"])("%s: the project's defaults fill the keys the file lacks, as the text the program reads", (stack) => {
    const { config } = phase(stack);
    const file = shipped(stack).config as Record<string, unknown>;
    for (const [key, declaration] of Object.entries(project.config)) {
      const full = `${PROJECT}:${key}`;
      if (full in file || key === "adminToken") continue;
      const expected = typeof declaration.default === "object" ? JSON.stringify(declaration.default) : String(declaration.default);
      expect({ key, value: config.values[full] }).toEqual({ key, value: expected });
    }
    expect(config.values[`${PROJECT}:adminTokenPrevious`]).toBe("");
    expect(config.values[`${PROJECT}:rollout`]).toBe('{"percent":100}');
    expect(config.secretKeys).toEqual([`${PROJECT}:adminToken`]);
    expect(config.values[`${PROJECT}:adminToken`]).toBe(SECRET_TOKEN.value);
  });

  it("keeps the stack's own values: numbers and booleans as text, maps as JSON with Go's sorted keys", () => {
    const { config } = phase("dev");
    expect(config.values[`${PROJECT}:sessionTtlSeconds`]).toBe("3600");
    expect(config.values[`${PROJECT}:workersDev`]).toBe("true");
    expect(config.values[`${PROJECT}:flags`]).toBe(
      '{"$evaluators":{"is_gold":{"in":[{"var":"tier"},["gold","platinum"]]}},' +
        '"checkout-banner":{"defaultVariant":"plain","metadata":{"owner":"checkout-team"},"state":"ENABLED",' +
        '"targeting":{"if":[{"$ref":"is_gold"},"gold",{"sem_ver":[{"var":"appVersion"},">=","2.0.0"]},"beta",null]},' +
        '"variants":{"beta":"Try the new checkout","gold":"Welcome back, gold member","plain":"Welcome"}},' +
        '"dark-mode":{"enabled":true},"new-checkout":{"enabled":true,"percentage":50}}',
    );
  });

  it("refuses a stack without a required key, naming it; several are listed sorted", () => {
    expect(() => phase("dev", { accountId: undefined })).toThrow(refusal("Stack 'dev' is missing configuration value 'accountId'"));
    expect(() => phase("prod", { accountId: undefined, originUrl: undefined }, [])).toThrow(
      refusal("Stack 'prod' is missing configuration values 'accountId', 'adminToken' and 'originUrl'"),
    );
  });

  it("an optional key declared without a default is required: the refusal every stack got before adminTokenPrevious had one", () => {
    const { default: _, ...withoutDefault } = project.config.adminTokenPrevious!;
    const before: Project = { ...project, config: { ...project.config, adminTokenPrevious: withoutDefault } };
    const { config } = stackConfigOf(before, configSet(before, shipped("dev"), SECRET_TOKEN, BASE64_CRYPTER));
    expect(() => applyProjectConfig("dev", before, config, BASE64_CRYPTER)).toThrow(refusal("Stack 'dev' is missing configuration value 'adminTokenPrevious'"));
  });

  it("a typed secret: true key cannot be optional: its plain default is refused as not encrypted", () => {
    const typedSecret: Project = { ...project, config: { ...project.config, adminTokenPrevious: { type: "string", secret: true, default: "" } } };
    const { config } = stackConfigOf(typedSecret, configSet(typedSecret, shipped("dev"), SECRET_TOKEN, BASE64_CRYPTER));
    expect(() => applyProjectConfig("dev", typedSecret, config, BASE64_CRYPTER)).toThrow(
      refusal("Stack 'dev' with configuration key 'adminTokenPrevious' must be encrypted as it's secret"),
    );
  });

  it("refuses the secret adminToken stored in plain text, and passes it on as a secret when set with --secret", () => {
    expect(() => phase("dev", {}, [{ ...SECRET_TOKEN, secret: false }])).toThrow(
      refusal("Stack 'dev' with configuration key 'adminToken' must be encrypted as it's secret"),
    );
    const doc = configSet(project, shipped("dev"), SECRET_TOKEN, BASE64_CRYPTER);
    expect((doc.config as Record<string, unknown>)[`${PROJECT}:adminToken`]).toEqual({ secure: BASE64_CRYPTER.encrypt(SECRET_TOKEN.value) });
  });

  it.each([
    ["sessionTtlSeconds", "an hour", "integer"],
    ["sessionTtlSeconds", 1.5, "integer"],
    ["workersDev", "yes", "boolean"],
    ["protect", 1, "boolean"],
    ["routes", "example.com/api/*", "array<string>"],
    ["customDomains", [1], "array<string>"],
    ["accountId", { id: "x" }, "string"],
  ])("refuses %s = %j: must be of type '%s'", (key, value, type) => {
    expect(() => phase("prod", { [key]: value })).toThrow(refusal(`Stack 'prod' with configuration key '${key}' must be of type '${type}'`));
  });

  it("accepts what `pulumi config set` writes for typed keys: text that parses as the type", () => {
    const { config } = phase("dev", {}, [SECRET_TOKEN, { key: "sessionTtlSeconds", value: "7200" }, { key: "protect", value: "true" }]);
    expect([config.values[`${PROJECT}:sessionTtlSeconds`], config.values[`${PROJECT}:protect`]]).toEqual(["7200", "true"]);
  });

  it("passes a key the project does not declare on to the program: the CLI has no such check", () => {
    expect(phase("dev", { colour: "blue" }).config.values[`${PROJECT}:colour`]).toBe("blue");
  });

  it("warns, as the CLI does, of a key with no value, and treats it as empty text", () => {
    const { warnings, config } = phase("dev", { workerName: null });
    expect(config.values[`${PROJECT}:workerName`]).toBe("");
    expect(warnings).toEqual([
      `No value for configuration key "${PROJECT}:workerName". This is currently treated as an empty string \`""\`, but will be treated as \`null\` in a future version of pulumi.\nSet the value to \`""\` to avoid this warning.`,
    ]);
  });
});

describe("loading Pulumi.yaml (LoadProjectBytes, Project.Validate)", () => {
  const withProject = (edit: (doc: Record<string, unknown>) => void) => {
    const root = mkdtempSync(join(tmpdir(), "cli-config-"));
    const doc = parseYaml(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as Record<string, unknown>;
    edit(doc);
    writeFileSync(join(root, "Pulumi.yaml"), stringify(doc));
    return root;
  };
  const configOf = (doc: Record<string, unknown>) => doc.config as Record<string, Record<string, unknown>>;

  it("refuses a typed default of the wrong type", () => {
    const root = withProject((doc) => (configOf(doc).cacheTtlSeconds!.default = "five minutes"));
    expect(() => loadProject(root)).toThrow(
      new CliConfigError("The default value specified for configuration key 'cacheTtlSeconds' is not of the expected type 'integer'", `could not unmarshal '${join(root, "Pulumi.yaml")}'`),
    );
  });

  it("refuses both a default and a value", () => {
    const root = withProject((doc) => (configOf(doc).zoneId!.value = "x"));
    expect(() => loadProject(root)).toThrow("project config 'zoneId' cannot have both a 'default' and 'value' attribute");
  });

  it("refuses a declaration attribute the project schema does not allow", () => {
    const root = withProject((doc) => (configOf(doc).originUrl!.required = true));
    expect(() => loadProject(root)).toThrow(new CliConfigError("#/config/originUrl: additionalProperties 'required' not allowed", `could not validate '${join(root, "Pulumi.yaml")}'`));
  });

  it("applies shorthand values (another namespace's value, the project's default) and `value:` as RewriteShorthandConfigValues and mergeConfig do", () => {
    const root = withProject((doc) => Object.assign(doc.config as object, { "cloudflare:apiUserServiceKey": "k", region: "weur", tier: { value: "free" } }));
    const loaded = loadProject(root);
    expect([loaded.config["cloudflare:apiUserServiceKey"], loaded.config.region]).toEqual([{ value: "k" }, { default: "weur" }]);
    const { config } = stackConfigOf(loaded, configSet(loaded, shipped("dev"), SECRET_TOKEN, BASE64_CRYPTER));
    const values = applyProjectConfig("dev", loaded, config, BASE64_CRYPTER).values;
    expect([values["cloudflare:apiUserServiceKey"], values[`${PROJECT}:region`], values[`${PROJECT}:tier`]]).toEqual(["k", "weur", "free"]);
  });
});
