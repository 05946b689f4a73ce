/**
 * Runs the Pulumi program on Pulumi's mock engine and records what it
 * registers: every resource with its inputs and options, and the stack
 * outputs. No CLI, no provider plugin, no credentials. Shared by the infra
 * tests and `npm run plan`.
 */
import * as pulumi from "@pulumi/pulumi";
import type { Bundle } from "../components/worker-service";
import { PROJECT } from "../stack-file";

/** How a secret value is shown in a recording. */
export const SECRET = "[secret]";

/** A Worker script binding as recorded (the fields the plan and the tests read). */
export interface RecordedBinding {
  type: string;
  name: string;
  namespaceId?: string;
  text?: string;
  /** `inherit` bindings: the version the value comes from. */
  versionId?: string;
  /** `ratelimit` bindings: the limit per period (seconds), counted in namespace `namespaceId`. */
  simple?: { limit: number; period: number };
  /** `r2_bucket` bindings: the bucket's name. */
  bucketName?: string;
}

export interface RecordedResource {
  type: string;
  name: string;
  /** false for component resources. */
  custom: boolean;
  /** Logical name of the parent resource, if any. */
  parent: string | undefined;
  /** The mock ID (`<name>-id`) other resources' inputs refer to. */
  id: string | undefined;
  /** Inputs, with every secret config value replaced by SECRET. */
  inputs: Record<string, unknown>;
  /** Inputs the engine receives as secrets (Pulumi marks a whole property secret when any part of it is). */
  secretInputs: string[];
  protect: boolean;
  retainOnDelete: boolean;
  /** The provider import id when the resource is adopted (`import` option) rather than created. */
  importId?: string;
  ignoreChanges?: string[];
}

export interface Recording {
  stack: string;
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
  /** Names of outputs that are Pulumi secrets. */
  secretOutputs: string[];
}

export interface RecordOptions {
  /** Config values without the project prefix, as YAML or Pulumi gives them. */
  config: Record<string, unknown>;
  /** Secret config values without the project prefix, e.g. { adminToken }. */
  secrets?: Record<string, string>;
  /** The bundle to deploy; by default the program builds dist/ when stale. */
  bundle?: Bundle;
  /** Called as each resource registers (tests use it to see nothing registers before a config error). */
  onResource?: (resource: RecordedResource) => void;
}

/** What Pulumi's RegisterResourceRequest carries that the mocks API does not pass on. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getImportid(): string;
  getIgnorechangesList(): string[];
}
type RegisterResource = (req: RegisterRequest, callback: (err: unknown, response: unknown) => void) => Promise<void>;

const isSecretValue = (value: unknown): value is { value: unknown } =>
  typeof value === "object" && value !== null && pulumi.runtime.specialSigKey in value &&
  (value as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig;

/**
 * Unwraps secret markers and replaces every secret config value with SECRET,
 * so that a property made secret by one part of it (the bindings, by the
 * admin token) stays readable in the plan without revealing the secret.
 */
function redact(value: unknown, secrets: ReadonlySet<string>): unknown {
  if (isSecretValue(value)) return redact(value.value, secrets);
  if (typeof value === "string") return secrets.has(value) ? SECRET : value;
  if (Array.isArray(value)) return value.map((item) => redact(item, secrets));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, secrets)]));
  }
  return value;
}

const toConfigString = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));

export async function recordStack(stack: string, options: RecordOptions): Promise<Recording> {
  const resources: RecordedResource[] = [];
  const secretValues = new Set(Object.values(options.secrets ?? {}));
  type Options = Pick<RecordedResource, "parent" | "protect" | "retainOnDelete" | "importId" | "ignoreChanges">;
  const pendingOptions = new Map<string, Options>();

  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const opts = pendingOptions.get(`${args.type}::${args.name}`);
        // An imported resource keeps its real id: the last part of the import id
        // (`<account_id>/<namespace_id>` → the namespace id).
        const id = !args.custom ? undefined : args.id ? args.id.split("/").pop() : `${args.name}-id`;
        const resource: RecordedResource = {
          type: args.type,
          name: args.name,
          custom: args.custom ?? false,
          parent: opts?.parent,
          id,
          inputs: redact(args.inputs, secretValues) as Record<string, unknown>,
          secretInputs: Object.keys(args.inputs).filter((key) => isSecretValue(args.inputs[key])),
          protect: opts?.protect ?? false,
          retainOnDelete: opts?.retainOnDelete ?? false,
          ...(opts?.importId ? { importId: opts.importId } : {}),
          ...(opts?.ignoreChanges?.length ? { ignoreChanges: opts.ignoreChanges } : {}),
        };
        resources.push(resource);
        options.onResource?.(resource);
        return { id, state: args.inputs };
      },
      call(args) {
        throw new Error(`unmocked provider function call: ${args.token}`);
      },
    },
    PROJECT,
    stack,
    false,
  );
  // The mocks API hides resource options; read them off the engine request.
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: RegisterResource };
  const registerResource = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    const parent = req.getParent().split("::").pop() || undefined;
    pendingOptions.set(`${req.getType()}::${req.getName()}`, {
      parent,
      protect: req.getProtect() ?? false,
      retainOnDelete: req.getRetainondelete() ?? false,
      importId: req.getImportid() || undefined,
      ignoreChanges: req.getIgnorechangesList(),
    });
    return registerResource(req, callback);
  };

  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...options.config, ...options.secrets })) {
    if (value !== undefined && value !== null) config[`${PROJECT}:${key}`] = toConfigString(value);
  }
  pulumi.runtime.setAllConfig(config, Object.keys(options.secrets ?? {}).map((key) => `${PROJECT}:${key}`));

  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  try {
    const { default: program } = await import("../index");
    const exported: Record<string, unknown> = await program(options.bundle);
    for (const [name, value] of Object.entries(exported)) {
      const output = pulumi.output(value);
      if (await pulumi.isSecret(output)) secretOutputs.push(name);
      outputs[name] = secretOutputs.includes(name) ? SECRET : await resolve(output);
    }
  } finally {
    // Waits for every registration to finish before the recording is read.
    await pulumi.runtime.disconnect();
  }
  // Registration order depends on when inputs resolve; the recording should not.
  resources.sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
  return { stack, resources, outputs, secretOutputs };
}

function resolve<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((done) => output.apply((value) => done(value)));
}

/** The recorded resource of a type token and logical name; throws when there is none. */
export function findResource(recording: Recording, type: string, name: string): RecordedResource {
  const found = recording.resources.find((r) => r.type === type && r.name === name);
  if (!found) {
    const names = recording.resources.map((r) => `${r.type} ${r.name}`).join("\n  ");
    throw new Error(`no ${type} named ${name}; recorded:\n  ${names}`);
  }
  return found;
}
