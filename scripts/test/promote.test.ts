import { describe, expect, it } from "vitest";
import type { Manifest } from "../build";
import type { ChangeSummary, StackOps, StackOutputs, StackUpdate } from "../lib/pulumi-stack";
import { runPromotion, type PromotionDeps } from "../promote";
import type { SmokeResult } from "../smoke";

const DEV_SHA = "a".repeat(64);
const OTHER_SHA = "b".repeat(64);
const PROD_URL = "https://kv-worker-stack-prod.example.workers.dev";

/** A fake of our own StackOps interface that writes every call into the shared log. */
function fakeStack(name: string, calls: string[], overrides: Partial<StackOps> & { outputs?: () => Promise<StackOutputs> } = {}): StackOps {
  const same: ChangeSummary = { same: 6 };
  return {
    name,
    preview: async () => {
      calls.push(`${name}.preview`);
      return { update: 1, ...same };
    },
    up: async () => {
      calls.push(`${name}.up`);
      return { changes: { update: 1, ...same }, version: 42 };
    },
    outputs: async () => {
      calls.push(`${name}.outputs`);
      return { url: PROD_URL, adminToken: "prod-token", bundleSha256: DEV_SHA };
    },
    history: async () => {
      calls.push(`${name}.history`);
      const update = (version: number, result: string, commit: string): StackUpdate => ({ version, kind: "update", result, startTime: new Date("2026-11-20T10:00:00Z"), commit });
      return [update(42, "succeeded", "c0ffee42"), update(41, "failed", "bad00041"), update(40, "succeeded", "900d0040")];
    },
    refreshPreview: async () => [],
    ...overrides,
  };
}

function setup(overrides: { dev?: Partial<StackOps>; prod?: Partial<StackOps>; local?: string | undefined; smoke?: SmokeResult[]; confirm?: boolean; yes?: boolean } = {}) {
  const calls: string[] = [];
  const lines: string[] = [];
  const passing: SmokeResult[] = [{ name: "health", status: "pass", detail: "", ms: 3 }];
  const deps: PromotionDeps = {
    from: fakeStack("dev", calls, overrides.dev),
    to: fakeStack("prod", calls, overrides.prod),
    readArtifact: async () => {
      calls.push("readArtifact");
      const sha256 = "local" in overrides ? overrides.local : DEV_SHA;
      return sha256 === undefined ? undefined : ({ sha256 } as Manifest);
    },
    confirm: async () => {
      calls.push("confirm");
      return overrides.confirm ?? true;
    },
    smoke: async (options) => {
      calls.push(`smoke ${options.url} ${options.adminToken} ${options.expectSha256}`);
      return overrides.smoke ?? passing;
    },
    yes: overrides.yes ?? false,
    log: (line) => lines.push(line),
  };
  return { deps, calls, output: () => lines.join("\n") };
}

describe("runPromotion", () => {
  it("runs the steps in order and smoke-tests the target's URL with its token and the promoted hash", async () => {
    const { deps, calls, output } = setup();
    await runPromotion(deps);
    expect(calls).toEqual([
      "dev.outputs",
      "readArtifact",
      "prod.preview",
      "confirm",
      "prod.up",
      "prod.outputs",
      `smoke ${PROD_URL} prod-token ${DEV_SHA}`,
    ]);
    expect(output()).toContain("Preview of prod: 1 to update, 6 unchanged");
    expect(output()).toContain(`promoted sha256 ${DEV_SHA} from dev to prod`);
  });

  it("does not ask for confirmation with --yes", async () => {
    const { deps, calls } = setup({ yes: true });
    await runPromotion(deps);
    expect(calls).not.toContain("confirm");
    expect(calls).toContain("prod.up");
  });

  it("refuses before any preview when dist/ holds another bundle, showing both hashes", async () => {
    const { deps, calls } = setup({ local: OTHER_SHA });
    const refusal = runPromotion(deps);
    await expect(refusal).rejects.toThrow(/refusing to promote/);
    await refusal.catch((error: Error) => {
      expect(error.message).toContain(`dev runs   sha256 ${DEV_SHA}`);
      expect(error.message).toContain(`dist/ holds  sha256 ${OTHER_SHA}`);
      expect(error.message).toMatch(/Download the dist artifact .* or `npm run build`/);
    });
    expect(calls).toEqual(["dev.outputs", "readArtifact"]);
  });

  it("refuses when there is no local build at all", async () => {
    const { deps, calls } = setup({ local: undefined });
    await expect(runPromotion(deps)).rejects.toThrow(/no build \(dist\/manifest.json is missing\)/);
    expect(calls).not.toContain("prod.preview");
  });

  it("refuses when the source stack reports no bundle", async () => {
    const { deps, calls } = setup({ dev: { outputs: async () => ({}) } });
    await expect(runPromotion(deps)).rejects.toThrow(/stack "dev" has no bundleSha256 output/);
    expect(calls).toEqual([]);
  });

  it("stops before the update when the preview fails", async () => {
    const { deps, calls } = setup({
      prod: {
        preview: async () => {
          throw new Error("pulumi preview of stack \"prod\" failed");
        },
      },
    });
    await expect(runPromotion(deps)).rejects.toThrow(/preview of stack "prod" failed/);
    expect(calls).toEqual(["dev.outputs", "readArtifact"]);
  });

  it("leaves the target alone when the user says no", async () => {
    const { deps, calls } = setup({ confirm: false });
    await expect(runPromotion(deps)).rejects.toThrow("promotion cancelled; prod was not changed");
    expect(calls).not.toContain("prod.up");
  });

  it("fails after a failed smoke check and prints how to roll back to the last good update", async () => {
    const { deps, calls, output } = setup({
      smoke: [
        { name: "health", status: "pass", detail: "", ms: 3 },
        { name: "session read", status: "fail", detail: "answered 500", ms: 5 },
      ],
    });
    await expect(runPromotion(deps)).rejects.toThrow(`prod now runs sha256 ${DEV_SHA} and failed 1 smoke check(s)`);
    expect(calls.at(-1)).toBe("prod.history");
    const text = output();
    expect(text).toContain("pulumi stack history --stack prod");
    // Update 42 is the one that just failed its smoke check, 41 failed outright: 40 is the last good one.
    expect(text).toContain("update 40 from commit 900d0040");
    expect(text).toContain("git checkout 900d0040 && npm ci && npm run build && npm run deploy -- --stack prod --yes");
    expect(text).toContain("Re-run all jobs");
  });

  it("says there is nothing to roll back to when the target never succeeded before", async () => {
    const { deps, output } = setup({
      smoke: [{ name: "health", status: "fail", detail: "", ms: 3 }],
      prod: { history: async () => [{ version: 42, kind: "update", result: "succeeded", startTime: new Date() }] },
    });
    await expect(runPromotion(deps)).rejects.toThrow(/failed 1 smoke check/);
    expect(output()).toContain("no successful update before update 42");
  });
});
