/**
 * The Pulumi CLI's config phase: what `pulumi preview` and `pulumi up` do with
 * Pulumi.yaml and Pulumi.<stack>.yaml before they start the program. The CLI
 * cannot run here, so the runtime harness (infra/test/runtime) and the offline
 * plan (`npm run plan`) run this instead, and a stack the CLI would refuse is
 * refused here first, with the CLI's own words.
 *
 * Read in pulumi/pulumi at commit 1b59498 (each function below names its Go
 * counterpart):
 * - sdk/go/common/workspace/loaders.go: `LoadProjectBytes`, `LoadProjectStackBytes`,
 *   `stackConfigNamespacedWithProject`, `checkForEmptyConfig`
 * - sdk/go/common/workspace/project.go and project.json (the schema):
 *   `ValidateProject`, `RewriteConfigPathIntoStackConfigDir`,
 *   `RewriteShorthandConfigValues`, `Project.Validate`, `ValidateConfigValue`,
 *   `InferFullTypeName`
 * - pkg/workspace/config.go (until 2026 sdk/go/common/workspace/config.go):
 *   `mergeConfig` (via `ValidateStackConfigAndApplyProjectConfig`),
 *   `validateStackConfigValues`, `validateStackConfigValue`, `createConfigValue`,
 *   `missingStackConfigurationKeysError`
 * - sdk/go/common/resource/config/object.go: `unmarshalObject`, `MarshalString`, `isSecureValue`
 * - pkg/cmd/pulumi/operations/preview.go, up.go: the "validating stack config" wrapping
 * - pkg/cmd/pulumi/config/config.go: `configSetCmd.Run` (`pulumi config set [--secret] <key> <value>`)
 *
 * Not emulated (each refused loudly rather than ignored, where a file could use
 * it): ESC environments (`environment:` in a stack file), path keys
 * (`a.b`, `a[0]`), `pulumi config set --path/--type`, the secrets providers'
 * ciphers (a `Crypter` is passed in), and the exact wording of the JSON-schema
 * library's messages for a malformed Pulumi.yaml.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";

/** A config value as the CLI holds it (`config.Value`): its text, whether that text is ciphertext, whether it is JSON. */
export interface ConfigValue {
  text: string;
  secure: boolean;
  object: boolean;
}

/** Stack config by full key, `<namespace>:<name>` (`config.Map`). */
export type ConfigMap = Map<string, ConfigValue>;

export interface ConfigItemsType {
  type: string;
  items?: ConfigItemsType;
}

/** One entry of Pulumi.yaml's `config` after the shorthand is rewritten (`ProjectConfigType`). */
export interface ProjectConfigType {
  type?: string;
  items?: ConfigItemsType;
  description?: string;
  default?: unknown;
  value?: unknown;
  secret?: boolean;
}

export interface Project {
  name: string;
  /** Where Pulumi.yaml was read from; the CLI's messages name it. */
  path: string;
  main?: string;
  runtime: string | { name: string; options?: Record<string, unknown> };
  config: Record<string, ProjectConfigType>;
  stackConfigDir?: string;
}

/** The secrets provider of a stack: how `secure:` values are written and read. */
export interface Crypter {
  encrypt(plaintext: string): string;
  decrypt(ciphertext: string): string;
}

/**
 * `config.Base64Crypter`, the crypter Pulumi's own config tests use: the
 * harness's stand-in for a stack's secrets provider. Secure values keep their
 * shape (`secure: <ciphertext>`) and their secret-ness; only the cipher differs
 * from the passphrase or cloud providers.
 */
export const BASE64_CRYPTER: Crypter = {
  encrypt: (plaintext) => Buffer.from(plaintext, "utf8").toString("base64"),
  decrypt: (ciphertext) => Buffer.from(ciphertext, "base64").toString("utf8"),
};

/** A refusal of the CLI before the program starts. The message is what the CLI prints after `error: `. */
export class CliConfigError extends Error {
  override name = "CliConfigError";
  constructor(
    /** The Go error's own text, e.g. `Stack 'dev' is missing configuration value 'adminToken'`. */
    readonly detail: string,
    /** The wrapping the command adds (`validating stack config`, `could not validate '<path>'`). */
    readonly context: string,
  ) {
    super(`${context}: ${detail}`);
  }
}

const TYPES = ["string", "integer", "boolean", "array"] as const;
const DECLARATION_ATTRIBUTES = ["type", "items", "description", "secret", "default", "value"];

/** `isPrimitiveValue`: what Go's YAML decoder gives as string, int or bool. */
const isPrimitive = (value: unknown): value is string | number | boolean =>
  typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isInteger(value));
const isMap = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
/** Go's `!= nil` on a decoded YAML value: absent and `null` are both nil. */
const isSet = (value: unknown) => value !== undefined && value !== null;

/** `configKeyIsNamespacedByProject`. */
const namespacedByProject = (projectName: string, key: string) => !key.includes(":") || key.startsWith(`${projectName}:`);

/** `parseConfigKey`: a key without a namespace is the project's. */
function fullKey(projectName: string, key: string): string {
  if (!key.includes(":")) return `${projectName}:${key}`;
  // `config.ParseKey`: `<namespace>:<name>`, or the old `<namespace>:config:<name>`.
  const parts = key.split(":");
  if (parts.length === 2) return key;
  if (parts.length === 3 && parts[1] === "config") return `${parts[0]}:${parts[2]}`;
  throw new CliConfigError(`could not parse ${key} as a configuration key (configuration keys should be of the form \`<namespace>:<name>\`)`, "validating stack config");
}

const nameOf = (key: string) => key.slice(key.indexOf(":") + 1);
const namespaceOf = (key: string) => key.slice(0, key.indexOf(":"));

function refusePathKey(key: string): void {
  if (/[.[]/.test(nameOf(key))) {
    throw new Error(`config key '${key}' is a path key (a.b or a[0]); the CLI config phase emulated in infra/cli-config.ts does not handle path keys`);
  }
}

/**
 * `json.Marshal` of a decoded value: Go writes map keys sorted, so a
 * structured value reaches the program with its keys in byte order whatever
 * order the YAML file had. (Go's HTML escaping of <, >, & is not reproduced;
 * it parses back to the same value.)
 */
export function goJson(value: unknown): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : isMap(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])])) : v;
  return JSON.stringify(sorted(value));
}

/** `isSecureValue`: a map of exactly one `secure` string. */
const secureText = (value: unknown): string | undefined =>
  isMap(value) && Object.keys(value).length === 1 && typeof value.secure === "string" ? value.secure : undefined;

function containsSecure(value: unknown): boolean {
  if (secureText(value) !== undefined) return true;
  if (Array.isArray(value)) return value.some(containsSecure);
  return isMap(value) && Object.values(value).some(containsSecure);
}

/** `unmarshalObject` then `MarshalString`: a stack file's YAML value as the CLI holds it. */
export function toConfigValue(value: unknown): ConfigValue {
  const secure = secureText(value);
  if (secure !== undefined) return { text: secure, secure: true, object: false };
  // checkForEmptyConfig: "treated as an empty string".
  if (value === null || value === undefined) return { text: "", secure: false, object: false };
  if (typeof value === "string") return { text: value, secure: false, object: false };
  if (typeof value === "number" || typeof value === "boolean") return { text: JSON.stringify(value), secure: false, object: false };
  return { text: goJson(value), secure: containsSecure(value), object: true };
}

/** `createConfigValue`: a project default or value as the CLI sets it on the stack. */
function createConfigValue(value: unknown): ConfigValue {
  if (isPrimitive(value)) return { text: String(value), secure: false, object: false };
  return { text: goJson(value), secure: false, object: true };
}

/** `Value.Value(decrypter)`: the plaintext, with nested secure values decrypted for objects. */
function plaintext(value: ConfigValue, crypter: Crypter): string {
  if (!value.secure) return value.text;
  if (!value.object) return crypter.decrypt(value.text);
  const decrypt = (v: unknown): unknown => {
    const secure = secureText(v);
    if (secure !== undefined) return crypter.decrypt(secure);
    if (Array.isArray(v)) return v.map(decrypt);
    return isMap(v) ? Object.fromEntries(Object.entries(v).map(([k, item]) => [k, decrypt(item)])) : v;
  };
  return goJson(decrypt(JSON.parse(value.text)));
}

/** `InferFullTypeName`. */
function typeName(type: string, items: ConfigItemsType | undefined): string {
  return items ? `array<${typeName(items.type, items.items)}>` : type;
}

/** `ValidateConfigValue`, for values as the CLI decodes them (YAML defaults, JSON objects, plain text). */
export function validateConfigValue(type: string, items: ConfigItemsType | undefined, value: unknown): boolean {
  if (type === "string") return typeof value === "string";
  if (type === "integer") {
    // An int, a whole float, or text strconv.Atoi accepts (64-bit).
    if (typeof value === "number") return Number.isInteger(value);
    if (typeof value !== "string" || !/^[+-]?\d+$/.test(value)) return false;
    const n = BigInt(value);
    return n >= -(2n ** 63n) && n < 2n ** 63n;
  }
  if (type === "boolean") return value === "true" || value === "false" || typeof value === "boolean";
  if (type === "object") return isMap(value);
  if (!Array.isArray(value) || items === undefined) return false;
  return value.every((item) => validateConfigValue(items.type, items.items, item));
}

/**
 * `LoadProject` → `LoadProjectBytes`: parse, `ValidateProject` (the schema's
 * rules for `config`), `RewriteConfigPathIntoStackConfigDir`,
 * `RewriteShorthandConfigValues`, then `Project.Validate`.
 */
export function loadProject(root: string): Project {
  const path = join(root, "Pulumi.yaml");
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8"));
  } catch (error) {
    throw new CliConfigError((error as Error).message, `could not unmarshal '${path}'`);
  }
  const invalid = (detail: string) => new CliConfigError(detail, `could not validate '${path}'`);
  if (!isMap(raw)) throw invalid(`expected project to be an object, was '${raw === null ? "nil" : typeof raw}'`);
  if (!("name" in raw)) throw invalid("project is missing a 'name' attribute");
  if (typeof raw.name !== "string" || raw.name === "") throw invalid("project is missing a non-empty string 'name' attribute");
  // The schema's requirements, in the schema's JSON-pointer form (the
  // jsonschema library's own wording is not reproduced).
  if (!isSet(raw.runtime)) throw invalid("#: missing properties: 'runtime'");
  const config = raw.config;
  if (isSet(config) && !isMap(config) && typeof config !== "string") throw invalid("#/config: expected object, string or null");
  if (isMap(config)) {
    for (const [key, declaration] of Object.entries(config)) {
      if (isPrimitive(declaration) || Array.isArray(declaration)) continue;
      if (!isMap(declaration)) throw invalid(`#/config/${key}: expected string, integer, boolean, array or a config type declaration`);
      for (const attribute of Object.keys(declaration)) {
        if (!DECLARATION_ATTRIBUTES.includes(attribute)) throw invalid(`#/config/${key}: additionalProperties '${attribute}' not allowed`);
      }
      if (declaration.type !== undefined && !(TYPES as readonly unknown[]).includes(declaration.type)) {
        throw invalid(`#/config/${key}/type: value must be one of ${TYPES.map((t) => `"${t}"`).join(", ")}`);
      }
      if (declaration.type === "array" && declaration.items === undefined) throw invalid(`#/config/${key}: missing properties: 'items'`);
    }
  }

  // RewriteConfigPathIntoStackConfigDir: `config: <dir>` is the old spelling of stackConfigDir.
  let stackConfigDir = typeof raw.stackConfigDir === "string" ? raw.stackConfigDir : undefined;
  if (typeof config === "string") {
    if (stackConfigDir !== undefined) {
      throw new CliConfigError("Should not use both config and stackConfigDir to define the stack directory. Use only stackConfigDir instead.", `could not load '${path}'`);
    }
    stackConfigDir = config;
  }

  // RewriteShorthandConfigValues: a bare value is the project's default, or another namespace's value.
  const name = raw.name;
  const declarations: Record<string, ProjectConfigType> = {};
  for (const [key, declaration] of Object.entries(isMap(config) ? config : {})) {
    declarations[key] = isPrimitive(declaration) || Array.isArray(declaration)
      ? namespacedByProject(name, key) ? { default: declaration } : { value: declaration }
      : (declaration as ProjectConfigType);
  }

  // Project.Validate.
  const unmarshal = (detail: string) => new CliConfigError(detail, `could not unmarshal '${path}'`);
  for (const [key, declaration] of Object.entries(declarations)) {
    if (isSet(declaration.default) && isSet(declaration.value)) throw unmarshal(`project config '${key}' cannot have both a 'default' and 'value' attribute`);
    if (namespacedByProject(name, key)) {
      if (declaration.type === "array" && declaration.items === undefined) {
        throw unmarshal(`The configuration key '${key}' declares an array but does not specify the underlying type via the 'items' attribute`);
      }
      if (declaration.type !== undefined && isSet(declaration.default) && !validateConfigValue(declaration.type, declaration.items, declaration.default)) {
        throw unmarshal(`The default value specified for configuration key '${key}' is not of the expected type '${typeName(declaration.type, declaration.items)}'`);
      }
    } else {
      if (declaration.type !== undefined) throw unmarshal(`Configuration key '${key}' is not namespaced by the project and should not define a type`);
      if (isSet(declaration.default)) {
        throw unmarshal(`Configuration key '${key}' is not namespaced by the project and should not define a default value. Did you mean to use the 'value' attribute instead of 'default'?`);
      }
      if (!isSet(declaration.value)) throw unmarshal(`Configuration key '${key}' is namespaced and must provide an attribute 'value'`);
    }
  }
  return {
    name,
    path,
    main: typeof raw.main === "string" ? raw.main : undefined,
    runtime: raw.runtime as Project["runtime"],
    config: declarations,
    stackConfigDir,
  };
}

/** Where the CLI keeps a stack's config: Pulumi.<stack>.yaml, next to Pulumi.yaml or in stackConfigDir. */
export const stackFilePath = (root: string, project: Project, stack: string) => join(root, project.stackConfigDir ?? "", `Pulumi.${stack}.yaml`);

/** A stack file as YAML parses it; a missing file is an empty one (`LoadProjectStack`). */
export function readStackDocument(path: string): Record<string, unknown> {
  if (!existsSync(path)) return {};
  const doc: unknown = parseYaml(readFileSync(path, "utf8"));
  return isMap(doc) ? doc : {};
}

export interface StackConfig {
  config: ConfigMap;
  /** `checkForEmptyConfig`'s warning, when a key has no value. */
  warnings: string[];
}

/** `LoadProjectStackBytes`: a stack file's `config`, keys namespaced by the project. */
export function stackConfigOf(project: Project, doc: Record<string, unknown>): StackConfig {
  if (doc.environment !== undefined) {
    throw new Error("the stack file imports ESC environments (`environment:`), which the CLI config phase emulated in infra/cli-config.ts does not resolve");
  }
  const raw = isMap(doc.config) ? doc.config : {};
  const config: ConfigMap = new Map();
  for (const [key, value] of Object.entries(raw)) {
    // stackConfigNamespacedWithProject
    config.set(fullKey(project.name, key.includes(":") ? key : `${project.name}:${key}`), toConfigValue(value));
  }
  const empty = Object.keys(raw).filter((key) => raw[key] === null).map((key) => `"${key}"`);
  const warnings = empty.length === 0 ? [] : [
    `No value for configuration key${empty.length > 1 ? "s" : ""} ${empty.length === 2 ? empty.join(" and ") : empty.join(", ")}. ` +
      "This is currently treated as an empty string `\"\"`, but will be treated as `null` in a future version of pulumi.\n" +
      `Set the value${empty.length > 1 ? "s" : ""} to \`""\` to avoid this warning.`,
  ];
  return { config, warnings };
}

/** What the engine hands the language host: every key's plaintext, and which keys are secret. */
export interface ProgramConfig {
  /** Full key (`<namespace>:<name>`) → the text the program reads. */
  values: Record<string, string>;
  /** Full keys whose stack value is secure (`config.Map.SecureKeys`), sorted. */
  secretKeys: string[];
}

/**
 * `ValidateStackConfigAndApplyProjectConfig` → `mergeConfig(validate: true)`:
 * applies the project's defaults and values to the keys the stack lacks,
 * refuses the stack when a required key is missing, then validates every
 * explicitly typed key (`validateStackConfigValues`). The stack's config is
 * not changed.
 */
export function applyProjectConfig(stackName: string, project: Project, stackConfig: ConfigMap, crypter: Crypter): ProgramConfig {
  const config: ConfigMap = new Map(stackConfig);
  const fail = (detail: string) => new CliConfigError(detail, "validating stack config");
  const keys = Object.keys(project.config).sort();
  const missing: string[] = [];
  for (const projectKey of keys) {
    const declaration = project.config[projectKey]!;
    const key = fullKey(project.name, projectKey);
    refusePathKey(key);
    const found = config.has(key);
    const hasDefault = isSet(declaration.default);
    const hasValue = isSet(declaration.value);
    if (!found && !hasValue && !hasDefault && namespaceOf(key) === project.name) {
      missing.push(projectKey);
      continue;
    }
    // A default wins over a value when both are given (Project.Validate refuses that anyway).
    if (!found && (hasValue || hasDefault)) config.set(key, createConfigValue(hasDefault ? declaration.default : declaration.value));
  }
  if (missing.length > 0) {
    // missingStackConfigurationKeysError and formatMissingKeys: "'a', 'b' and 'c'", in the sorted order of `keys`.
    const quoted = missing.map((key) => `'${key}'`);
    const list = quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(", ")} and ${quoted.at(-1)}`;
    throw fail(`Stack '${stackName}' is missing configuration value${missing.length > 1 ? "s" : ""} ${list}`);
  }

  // validateStackConfigValues: decrypt everything once (a bad ciphertext fails here), then check the typed keys.
  const values: Record<string, string> = {};
  for (const [key, value] of config) values[key] = plaintext(value, crypter);
  for (const projectKey of keys) {
    const declaration = project.config[projectKey]!;
    if (declaration.type === undefined) continue;
    const key = fullKey(project.name, projectKey);
    const value = config.get(key)!;
    // validateStackConfigValue: secret first, then the type.
    if (declaration.secret && !value.secure) throw fail(`Stack '${stackName}' with configuration key '${projectKey}' must be encrypted as it's secret`);
    const content: unknown = value.object ? JSON.parse(values[key]!) : values[key];
    if (!validateConfigValue(declaration.type, declaration.items, content)) {
      throw fail(`Stack '${stackName}' with configuration key '${projectKey}' must be of type '${typeName(declaration.type, declaration.items)}'`);
    }
  }
  const secretKeys = [...config].filter(([, value]) => value.secure).map(([key]) => key).sort();
  return { values, secretKeys };
}

/**
 * `pulumi config set [--secret] <key> <value>` (`configSetCmd.Run`), on a
 * parsed stack file: the value is written as text (no `--type`), or encrypted
 * as `secure: <ciphertext>` with `--secret`. The CLI's refusal of a
 * plain-text value that looks like a secret (`looksLikeSecret`, a zxcvbn
 * entropy check) is not reproduced.
 */
export function configSet(
  project: Project,
  doc: Record<string, unknown>,
  command: { key: string; value: string; secret?: boolean },
  crypter: Crypter,
): Record<string, unknown> {
  const key = fullKey(project.name, command.key);
  refusePathKey(key);
  const config = { ...(isMap(doc.config) ? doc.config : {}) };
  // The stack file may spell a project key without its namespace; `set` replaces that entry.
  if (namespaceOf(key) === project.name) delete config[nameOf(key)];
  config[key] = command.secret ? { secure: crypter.encrypt(command.value) } : command.value;
  return { ...doc, config };
}

export interface ConfigPhase {
  project: Project;
  config: ProgramConfig;
  warnings: string[];
}

/**
 * The whole phase for one stack: load the project, the stack file (or the
 * given document, e.g. after `configSet`), and apply and validate the config.
 */
export function runConfigPhase(root: string, stack: string, options: { document?: Record<string, unknown>; crypter: Crypter }): ConfigPhase {
  const project = loadProject(root);
  const doc = options.document ?? readStackDocument(stackFilePath(root, project, stack));
  const { config, warnings } = stackConfigOf(project, doc);
  return { project, config: applyProjectConfig(stack, project, config, options.crypter), warnings };
}
