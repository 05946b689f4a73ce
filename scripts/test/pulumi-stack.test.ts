import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { POLICY_PACK_DIR, openStack } from "../lib/pulumi-stack";

/** What the Automation API was asked to run, captured by a fake workspace (no Pulumi CLI here). */
const calls: { op: string; options: Record<string, unknown> }[] = [];
vi.mock("@pulumi/pulumi/automation", () => {
  class StackNotFoundError extends Error {}
  class ConcurrentUpdateError extends Error {}
  const stack = {
    preview: async (options: Record<string, unknown>) => (calls.push({ op: "preview", options }), { changeSummary: { same: 1 } }),
    up: async (options: Record<string, unknown>) => (calls.push({ op: "up", options }), { summary: { resourceChanges: { same: 1 }, version: 2 } }),
  };
  return { LocalWorkspace: { selectStack: async () => stack }, StackNotFoundError, ConcurrentUpdateError };
});

describe("openStack", () => {
  it("runs the policy pack in every preview and up, so a mandatory violation stops the update", async () => {
    const ops = await openStack("dev", () => {});
    await ops.preview();
    await ops.up();
    expect(calls.map((c) => [c.op, c.options.policyPacks])).toEqual([
      ["preview", [POLICY_PACK_DIR]],
      ["up", [POLICY_PACK_DIR]],
    ]);
    expect(existsSync(join(POLICY_PACK_DIR, "PulumiPolicy.yaml"))).toBe(true);
  });
});
