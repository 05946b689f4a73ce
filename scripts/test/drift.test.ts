import type { EngineEvent, StepEventMetadata } from "@pulumi/pulumi/automation";
import { describe, expect, it } from "vitest";
import { type DriftDeps, driftReport, runDrift } from "../drift";
import type { StackOps } from "../lib/pulumi-stack";
import { type DriftedResource, driftCollector, EXIT_DRIFT } from "../lib/stack-drift";

const KV_TYPE = "cloudflare:index/workersKvNamespace:WorkersKvNamespace";
const URN = (type: string, name: string) => `urn:pulumi:dev::kv-worker-stack::kv-worker-stack:cloudflare:KvNamespaces$${type}::${name}`;

const RENAMED: DriftedResource = {
  urn: URN(KV_TYPE, "kv-sessions"),
  type: KV_TYPE,
  name: "kv-sessions",
  change: "update",
  properties: [{ path: "title", old: "kv-worker-stack-dev-sessions", new: "renamed-in-dashboard" }],
};
const GONE: DriftedResource = { urn: URN("cloudflare:index/workersRoute:WorkersRoute", "route-0"), type: "cloudflare:index/workersRoute:WorkersRoute", name: "route-0", change: "delete", properties: [] };

function setup(drift: DriftedResource[] | Error, cli: string | undefined = "v3.200.0") {
  const lines: string[] = [];
  const reports: string[] = [];
  const calls: string[] = [];
  const stack: Pick<StackOps, "name" | "refreshPreview"> = {
    name: "dev",
    refreshPreview: async () => {
      calls.push("refreshPreview");
      if (drift instanceof Error) throw drift;
      return drift;
    },
  };
  const deps: DriftDeps = {
    cliVersion: async () => cli,
    open: async (name) => {
      calls.push(`open ${name}`);
      return stack;
    },
    writeReport: async (markdown) => void reports.push(markdown),
    log: (line) => lines.push(line),
  };
  return { deps, calls, reports, output: () => lines.join("\n") };
}

describe("npm run drift", () => {
  it("exits 0 and says so when every resource matches the state", async () => {
    const { deps, calls, reports, output } = setup([]);
    await expect(runDrift("dev", deps)).resolves.toBeUndefined();
    expect(calls).toEqual(["open dev", "refreshPreview"]);
    expect(output()).toContain("No drift in dev");
    expect(reports).toEqual([driftReport("dev", [])]);
  });

  it("exits 3 naming each drifted resource and the properties that differ", async () => {
    const { deps, reports, output } = setup([RENAMED, GONE]);
    await expect(runDrift("dev", deps)).rejects.toMatchObject({ exitCode: EXIT_DRIFT, message: "dev has drifted: 2 resource(s) changed outside Pulumi" });
    expect(output()).toContain(`~ kv-sessions (${KV_TYPE}): changed outside Pulumi\n    title: "kv-worker-stack-dev-sessions" → "renamed-in-dashboard"`);
    expect(output()).toContain("- route-0 (cloudflare:index/workersRoute:WorkersRoute): deleted outside Pulumi");
    expect(reports[0]).toContain('| `kv-sessions` | `cloudflare:index/workersKvNamespace:WorkersKvNamespace` | changed | `title`: `"kv-worker-stack-dev-sessions"` → `"renamed-in-dashboard"` |');
    expect(reports[0]).toContain("| `route-0` |");
  });

  it("exits 2 without a Pulumi CLI, before opening the stack", async () => {
    const { deps, calls } = setup([]);
    await expect(runDrift("dev", { ...deps, cliVersion: async () => undefined })).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining("Pulumi CLI is not installed") });
    expect(calls).toEqual([]);
  });

  it("lets a failed refresh fail (exit 1), not report it as drift", async () => {
    const { deps } = setup(new Error("pulumi refresh --preview-only of stack \"dev\" failed"));
    const error: unknown = await runDrift("dev", deps).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toHaveProperty("exitCode");
    expect((error as Error).message).toContain("failed");
  });
});

describe("drift from the engine's refresh events", () => {
  const state = (outputs: Record<string, unknown>) => ({ type: KV_TYPE, urn: RENAMED.urn, id: "abc", parent: "", inputs: {}, outputs, provider: "p" });
  const step = (metadata: Partial<StepEventMetadata>): StepEventMetadata => ({ op: "refresh", urn: RENAMED.urn, type: KV_TYPE, provider: "p", ...metadata });
  const collect = (events: EngineEvent[]) => {
    const collector = driftCollector();
    for (const event of events) collector.onEvent(event);
    return collector.drift();
  };
  const event = (metadata: StepEventMetadata, kind: "resourcePreEvent" | "resOutputsEvent" = "resOutputsEvent") =>
    ({ sequence: 1, timestamp: 0, [kind]: { metadata } }) as EngineEvent;

  it("finds a property changed outside Pulumi by comparing the state with what the provider reads", () => {
    const old = state({ id: "abc", title: "kv-worker-stack-dev-sessions", supportsUrlEncoding: true });
    const now = state({ id: "abc", title: "renamed-in-dashboard", supportsUrlEncoding: true });
    expect(collect([event(step({ old, new: old }), "resourcePreEvent"), event(step({ old, new: now }))])).toEqual([RENAMED]);
  });

  it("uses the engine's own diff keys when it gives them, and finds a deleted resource", () => {
    const old = state({ bindings: [{ name: "CACHE" }], title: "t" });
    const now = state({ bindings: [], title: "t2" });
    const goneUrn = GONE.urn;
    const drift = collect([
      event(step({ old, new: now, diffs: ["bindings"] })),
      event(step({ urn: goneUrn, type: GONE.type, old: { ...old, urn: goneUrn, type: GONE.type } })),
    ]);
    expect(drift.map((d) => [d.name, d.change, d.properties.map((p) => p.path)])).toEqual([
      ["kv-sessions", "update", ["bindings"]],
      ["route-0", "delete", []],
    ]);
  });

  it("ignores unchanged resources, providers and the stack itself", () => {
    const same = state({ title: "t" });
    expect(
      collect([
        event(step({ old: same, new: same })),
        event(step({ op: "same", urn: "urn:pulumi:dev::kv-worker-stack::pulumi:providers:cloudflare::default", type: "pulumi:providers:cloudflare", old: state({ version: "1" }), new: state({ version: "2" }) })),
      ]),
    ).toEqual([]);
  });
});
