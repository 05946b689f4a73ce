/**
 * Plays the Pulumi engine for one program run: a gRPC server with the
 * ResourceMonitor and Engine services, built from the generated stubs and the
 * `@grpc/grpc-js` that ship inside `@pulumi/pulumi`, so the program speaks to
 * it exactly as it speaks to `pulumi preview`. It answers RegisterResource
 * like a preview of a stack that is already deployed: a stable stand-in ID and
 * the inputs echoed back as outputs. Every request is recorded. A call the
 * harness does not implement is answered UNIMPLEMENTED and recorded, so a
 * test fails on it instead of hanging.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import type * as GrpcJs from "@grpc/grpc-js";
import type * as EngineGrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import type * as EnginePb from "@pulumi/pulumi/proto/engine_pb";
import type * as ResourceGrpc from "@pulumi/pulumi/proto/resource_grpc_pb";
import type * as ResourcePb from "@pulumi/pulumi/proto/resource_pb";
import type * as EmptyPb from "google-protobuf/google/protobuf/empty_pb";

// Resolved from inside @pulumi/pulumi, so the server uses the very grpc-js
// instance and message classes the stubs were generated against.
const fromSdk = createRequire(createRequire(import.meta.url).resolve("@pulumi/pulumi/proto/resource_grpc_pb.js"));
const grpc = fromSdk("@grpc/grpc-js") as typeof GrpcJs;
const { ResourceMonitorService } = fromSdk("./resource_grpc_pb.js") as typeof ResourceGrpc;
const { EngineService } = fromSdk("./engine_grpc_pb.js") as typeof EngineGrpc;
const resourcePb = fromSdk("./resource_pb.js") as typeof ResourcePb;
const enginePb = fromSdk("./engine_pb.js") as typeof EnginePb;
const { Empty } = fromSdk("google-protobuf/google/protobuf/empty_pb.js") as typeof EmptyPb;

/** The marker objects of Pulumi's wire format (sdk/nodejs/runtime/rpc.ts). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** How a secret value shows in a recording. */
export const SECRET = "[secret]";

/** One RegisterResource request, as the engine received it. */
export interface Registration {
  type: string;
  name: string;
  urn: string;
  custom: boolean;
  /** Logical name of the parent (the stack for top-level resources); undefined for the stack itself. */
  parent: string | undefined;
  /** The stand-in ID the engine answered with (custom resources only). */
  id: string | undefined;
  /** Inputs with secret markers unwrapped and every secret config value replaced by SECRET. */
  inputs: Record<string, unknown>;
  /**
   * Where the inputs carry secret markers, as paths (`bindings[9].text`). The
   * SDK marks the secret value itself, not the whole property, when the
   * monitor supports secrets.
   */
  secretPaths: string[];
  protect: boolean;
  retainOnDelete: boolean;
  importId: string | undefined;
  /** Logical names of the resources this one depends on, sorted. */
  dependencies: string[];
  provider: string | undefined;
  /** The provider plugin version the SDK asks for; the engine loads (or installs) that plugin for the default provider. */
  version: string | undefined;
}

export interface LogEntry {
  severity: "debug" | "info" | "warning" | "error";
  message: string;
  /** Logical name of the resource the message is about, if any. */
  resource: string | undefined;
}

export interface EngineRecord {
  registrations: Registration[];
  /** Stack outputs (RegisterResourceOutputs on the stack), secrets shown as SECRET. */
  outputs: Record<string, unknown> | undefined;
  secretOutputs: string[];
  /** Engine Log messages, debug ones left out (Pulumi shows those only with --debug, and they repeat every RPC). */
  logs: LogEntry[];
  /** `Service/Method` of every call the harness does not implement. */
  unexpectedCalls: string[];
  /** Every feature the program asked about with SupportsFeature, if it fell back to that. */
  featureQueries: string[];
}

export interface EngineOptions {
  project: string;
  stack: string;
  organization: string;
  dryRun: boolean;
  parallel: number;
  /** Secret config values: shown as SECRET wherever they appear in a recording. */
  secretValues: readonly string[];
}

/**
 * The features the engine's monitor advertises (`supportedMonitorFeatures` in
 * pkg/resource/deploy/source_eval.go) that this harness honours. Transforms,
 * hooks and parameterized packages are left out: the program uses none, and
 * if it starts to, the calls show up in `unexpectedCalls`.
 */
const SUPPORTED_FEATURES = [
  resourcePb.ResourceMonitorFeature.RESOURCE_MONITOR_FEATURE_SECRETS,
  resourcePb.ResourceMonitorFeature.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES,
  resourcePb.ResourceMonitorFeature.RESOURCE_MONITOR_FEATURE_OUTPUT_VALUES,
  resourcePb.ResourceMonitorFeature.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS,
  resourcePb.ResourceMonitorFeature.RESOURCE_MONITOR_FEATURE_DELETED_WITH,
];
const LEGACY_FEATURE_IDS = ["secrets", "resourceReferences", "outputValues", "aliasSpecs", "deletedWith"];
const SEVERITY = ["debug", "info", "warning", "error"] as const;

type Callback<T> = (error: GrpcJs.ServiceError | null, response?: T) => void;
type Call<T> = { request: T };

export interface RunningEngine {
  /** host:port for both `--monitor` and `--engine`. */
  address: string;
  record: EngineRecord;
  stop(): Promise<void>;
}

export async function startEngine(options: EngineOptions): Promise<RunningEngine> {
  const record: EngineRecord = { registrations: [], outputs: undefined, secretOutputs: [], logs: [], unexpectedCalls: [], featureQueries: [] };
  const secrets = new Set(options.secretValues);
  const names = new Map<string, string>();
  const stackType = "pulumi:pulumi:Stack";
  let rootUrn = "";

  /** `urn.New` in sdk/go/common/resource/urn/urn.go: the parent's type chain, `$`, the type; the root stack is not part of the chain. */
  const urnOf = (type: string, name: string, parentUrn: string) => {
    const parentType = parentUrn ? parentUrn.split("::")[2]! : "";
    const qualified = parentType && parentType !== stackType ? `${parentType}$${type}` : type;
    return `urn:pulumi:${options.stack}::${options.project}::${qualified}::${name}`;
  };
  const nameOf = (urn: string) => names.get(urn) ?? `<unregistered ${urn}>`;

  const monitor: Partial<Record<keyof typeof ResourceMonitorService, unknown>> = {
    getDeploymentInfo(_call: Call<unknown>, callback: Callback<ResourcePb.DeploymentInfo>) {
      const info = new resourcePb.DeploymentInfo()
        .setProject(options.project)
        .setStack(options.stack)
        .setOrganization(options.organization)
        .setDryrun(options.dryRun)
        .setParallel(options.parallel)
        .setSupportedfeaturesList(SUPPORTED_FEATURES);
      callback(null, info);
    },
    // Only SDKs older than GetDeploymentInfo ask feature by feature.
    supportsFeature(call: Call<ResourcePb.SupportsFeatureRequest>, callback: Callback<ResourcePb.SupportsFeatureResponse>) {
      record.featureQueries.push(call.request.getId());
      callback(null, new resourcePb.SupportsFeatureResponse().setHassupport(LEGACY_FEATURE_IDS.includes(call.request.getId())));
    },
    registerResource(call: Call<ResourcePb.RegisterResourceRequest>, callback: Callback<ResourcePb.RegisterResourceResponse>) {
      const req = call.request;
      const urn = urnOf(req.getType(), req.getName(), req.getParent());
      names.set(urn, req.getName());
      const raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
      // A real-looking ID (32 hex characters, as Cloudflare's), stable across runs.
      const id = req.getCustom() ? createHash("sha256").update(urn).digest("hex").slice(0, 32) : undefined;
      record.registrations.push({
        type: req.getType(),
        name: req.getName(),
        urn,
        custom: req.getCustom(),
        parent: req.getParent() ? nameOf(req.getParent()) : undefined,
        id,
        inputs: reveal(raw, secrets) as Record<string, unknown>,
        secretPaths: secretPaths(raw),
        protect: req.getProtect() ?? false,
        retainOnDelete: req.getRetainondelete() ?? false,
        importId: req.getImportid() || undefined,
        dependencies: [...new Set(req.getDependenciesList().map(nameOf))].sort(),
        provider: req.getProvider() || undefined,
        version: req.getVersion() || undefined,
      });
      // The inputs come back as outputs, secret markers included, as a
      // provider's Check and Read would return them for an unchanged resource.
      const response = new resourcePb.RegisterResourceResponse().setUrn(urn).setObject(req.getObject());
      if (id !== undefined) response.setId(id);
      callback(null, response);
    },
    registerResourceOutputs(call: Call<ResourcePb.RegisterResourceOutputsRequest>, callback: Callback<EmptyPb.Empty>) {
      const urn = call.request.getUrn();
      if (urn.split("::")[2] === stackType) {
        const raw = (call.request.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>;
        record.secretOutputs = Object.keys(raw).filter((key) => isSecret(raw[key])).sort();
        record.outputs = Object.fromEntries(
          Object.entries(raw).map(([key, value]) => [key, record.secretOutputs.includes(key) ? SECRET : reveal(value, secrets)]),
        );
      }
      callback(null, new Empty());
    },
    signalAndWaitForShutdown(_call: Call<unknown>, callback: Callback<EmptyPb.Empty>) {
      callback(null, new Empty());
    },
  };

  const engine: Partial<Record<keyof typeof EngineService, unknown>> = {
    log(call: Call<EnginePb.LogRequest>, callback: Callback<EmptyPb.Empty>) {
      const req = call.request;
      const severity = SEVERITY[req.getSeverity()] ?? "error";
      if (severity !== "debug") {
        record.logs.push({ severity, message: req.getMessage(), resource: req.getUrn() ? nameOf(req.getUrn()) : undefined });
      }
      callback(null, new Empty());
    },
    getRootResource(_call: Call<unknown>, callback: Callback<EnginePb.GetRootResourceResponse>) {
      callback(null, new enginePb.GetRootResourceResponse().setUrn(rootUrn));
    },
    setRootResource(call: Call<EnginePb.SetRootResourceRequest>, callback: Callback<EnginePb.SetRootResourceResponse>) {
      rootUrn = call.request.getUrn();
      callback(null, new enginePb.SetRootResourceResponse());
    },
  };

  const server = new grpc.Server();
  server.addService(ResourceMonitorService, withLoudDefaults("ResourceMonitor", ResourceMonitorService, monitor, record));
  server.addService(EngineService, withLoudDefaults("Engine", EngineService, engine, record));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    address: `127.0.0.1:${port}`,
    record,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** Fills every method the harness does not implement with one that records the call and answers UNIMPLEMENTED. */
function withLoudDefaults(
  service: string,
  definition: GrpcJs.ServiceDefinition,
  implemented: Partial<Record<string, unknown>>,
  record: EngineRecord,
): GrpcJs.UntypedServiceImplementation {
  const handlers: GrpcJs.UntypedServiceImplementation = {};
  for (const method of Object.keys(definition)) {
    handlers[method] = (implemented[method] as GrpcJs.UntypedHandleCall | undefined) ??
      ((_call: unknown, callback: Callback<never>) => {
        const name = `${service}/${definition[method]!.path.split("/").pop()}`;
        record.unexpectedCalls.push(name);
        callback({ code: grpc.status.UNIMPLEMENTED, details: `the test engine does not implement ${name}` } as GrpcJs.ServiceError);
      });
  }
  return handlers;
}

const isSecret = (value: unknown): boolean =>
  typeof value === "object" && value !== null && (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;

function secretPaths(value: unknown, path = ""): string[] {
  if (isSecret(value)) return [path];
  if (Array.isArray(value)) return value.flatMap((item, i) => secretPaths(item, `${path}[${i}]`));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => secretPaths(item, path ? `${path}.${key}` : key));
  }
  return [];
}

/**
 * Unwraps secret and output-value markers and replaces secret config values
 * with SECRET, so a property made secret by one part of it (the bindings, by
 * the admin token) stays readable without revealing the secret.
 */
function reveal(value: unknown, secrets: ReadonlySet<string>): unknown {
  if (typeof value === "string") return secrets.has(value) ? SECRET : value === UNKNOWN ? "<unknown>" : value;
  if (Array.isArray(value)) return value.map((item) => reveal(item, secrets));
  if (typeof value === "object" && value !== null) {
    const object = value as Record<string, unknown>;
    if (object[SIG_KEY] === SECRET_SIG) return reveal(object.value, secrets);
    if (object[SIG_KEY] === OUTPUT_SIG) return "value" in object ? reveal(object.value, secrets) : "<unknown>";
    return Object.fromEntries(Object.entries(object).map(([key, item]) => [key, reveal(item, secrets)]));
  }
  return value;
}
