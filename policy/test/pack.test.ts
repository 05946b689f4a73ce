import { describe, expect, it, vi } from "vitest";
import type { PolicyPackArgs, PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { RULES, TYPES } from "../rules";

/** The pack's arguments, captured instead of starting Pulumi's policy gRPC server. */
const packs: { name: string; args: PolicyPackArgs }[] = [];
vi.mock("@pulumi/policy", () => ({
  PolicyPack: class {
    constructor(name: string, args: PolicyPackArgs) {
      packs.push({ name, args });
    }
  },
}));
await import("../pack");

const urn = (type: string, name: string) => `urn:pulumi:prod::kv-worker-stack::${type}::${name}`;
const resource = (type: string, name: string, props: Record<string, unknown>, protect = false) =>
  ({ type, name, urn: urn(type, name), props, opts: { protect } }) as unknown as PolicyResource;

/** Runs one policy of the pack over Pulumi-shaped resources of stack "prod" (its committed stack file). */
function violations(policyName: string, resources: PolicyResource[]) {
  const policy = packs[0]?.args.policies.find((p) => p.name === policyName) as StackValidationPolicy;
  const reported: { message: string; urn: string | undefined }[] = [];
  void policy.validateStack({ resources, stackTags: new Map(), getConfig: <T,>() => ({}) as T, notApplicable: () => undefined as never }, (message, at) =>
    reported.push({ message, urn: at }),
  );
  return reported;
}

describe("the Pulumi policy pack", () => {
  it("declares every rule with its enforcement level", () => {
    expect(packs.map((p) => p.name)).toEqual(["kv-worker-stack"]);
    expect(packs[0]?.args.policies.map((p) => [p.name, p.enforcementLevel])).toEqual(RULES.map((r) => [r.name, r.enforcementLevel]));
  });

  it("reads the stack from the URNs and its settings from the stack file, reporting on the offending resource", () => {
    // prod has protect: true in Pulumi.prod.yaml; an unprotected production namespace is refused there.
    const ns = resource(TYPES.namespace, "kv-sessions", { id: "a".repeat(32), title: "kv-worker-stack-prod-sessions" });
    expect(violations("protected-production-namespaces", [ns])).toEqual([{ message: expect.stringMatching(/kv-sessions is not protected/), urn: ns.urn }]);
    expect(violations("protected-production-namespaces", [resource(TYPES.namespace, "kv-sessions", { id: "a".repeat(32) }, true)])).toEqual([]);
  });

  it("checks bindings on the properties Pulumi reports, ids included", () => {
    const ns = resource(TYPES.namespace, "kv-sessions-preview", { id: "b".repeat(32), title: "kv-worker-stack-prod-sessions-preview" });
    const script = resource(TYPES.script, "worker-script", { bindings: [{ type: "kv_namespace", name: "SESSIONS", namespaceId: "b".repeat(32) }] });
    expect(violations("kv-bindings-own-production-namespaces", [ns, script])).toEqual([
      { message: expect.stringMatching(/binding SESSIONS points at the preview namespace kv-sessions-preview/), urn: script.urn },
    ]);
  });
});
