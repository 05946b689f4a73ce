import { describe, expect, it } from "vitest";
import { type Rollout, type TrafficShare, trafficSplit } from "../../infra/rollout";
import type { Manifest } from "../build";
import type { ChangeSummary, StackOps, StackOutputs, StackUpdate } from "../lib/pulumi-stack";
import { HOLD_INTERVAL_MS, parseSteps, runPromotion, type PromotionDeps } from "../promote";
import { runRollback, type RollbackDeps } from "../rollback";
import type { SmokeResult } from "../smoke";

const DEV_SHA = "a".repeat(64);
const OTHER_SHA = "b".repeat(64);
const PROD_URL = "https://api.example.com";
const WORKER = "kv-worker-stack-prod-worker";
const STABLE = "11111111-1111-4111-8111-111111111111";
const NEW = "22222222-2222-4222-8222-222222222222";
const OLDER = "33333333-3333-4333-8333-333333333333";

/**
 * A fake of our own StackOps interface that behaves like the program: `up`
 * uploads NEW and deploys the split the rollout config gives, `upDeployment`
 * only moves traffic between the versions already uploaded. Every call is
 * written into the shared log, with the rollout it ran with.
 */
function fakeStack(name: string, calls: string[], state: { uploaded?: string; deployment?: TrafficShare[]; rollout?: Rollout } = {}, overrides: Partial<StackOps> = {}) {
  const same: ChangeSummary = { same: 6 };
  let uploaded = state.uploaded;
  let deployment = state.deployment ?? [];
  let rollout: Rollout = state.rollout ?? { percent: 100 };
  const describe = (r: Rollout) => `${r.percent}${r.stableVersionId ? ` ${r.stableVersionId.slice(0, 4)}` : ""}`;
  const ops: StackOps = {
    name,
    preview: async () => {
      calls.push(`${name}.preview ${describe(rollout)}`);
      return { update: 1, ...same };
    },
    up: async () => {
      calls.push(`${name}.up ${describe(rollout)}`);
      uploaded = NEW;
      deployment = trafficSplit(rollout, NEW);
      return { changes: { create: 1, update: 1, ...same }, version: 42 };
    },
    upDeployment: async () => {
      calls.push(`${name}.upDeployment ${describe(rollout)}`);
      deployment = trafficSplit(rollout, uploaded!);
      return { changes: { update: 1 }, version: 43 };
    },
    outputs: async (): Promise<StackOutputs> => ({
      url: PROD_URL,
      workerName: WORKER,
      adminToken: "prod-token",
      bundleSha256: DEV_SHA,
      ...(uploaded ? { candidateVersionId: uploaded } : {}),
      ...(deployment[0] ? { activeVersionId: deployment[0].versionId } : {}),
      deployment,
      ...(rollout.stableVersionId ? { stableVersionId: rollout.stableVersionId } : {}),
    }),
    history: async () => [] as StackUpdate[],
    rollout: async () => rollout,
    setRollout: async (next) => {
      calls.push(`${name}.setRollout ${describe(next)}`);
      rollout = next;
    },
    refreshPreview: async () => [],
    ...overrides,
  };
  return { ops, deployment: () => deployment, rollout: () => rollout };
}

const PASS: SmokeResult[] = [{ name: "health", status: "pass", detail: "", ms: 3 }];
const FAIL: SmokeResult[] = [...PASS, { name: "session read", status: "fail", detail: "answered 500", ms: 5 }];

function setup(options: { local?: string | undefined; failAt?: number; confirm?: boolean; yes?: boolean; holdSeconds?: number; firstRelease?: boolean; dev?: Partial<StackOps> } = {}) {
  const calls: string[] = [];
  const lines: string[] = [];
  const prod = fakeStack("prod", calls, options.firstRelease ? {} : { uploaded: STABLE, deployment: [{ versionId: STABLE, percent: 100 }] });
  let clock = 0;
  const deps: PromotionDeps = {
    from: fakeStack("dev", [], {}, { outputs: async () => ({ bundleSha256: DEV_SHA }), ...options.dev }).ops,
    to: prod.ops,
    readArtifact: async () => {
      calls.push("readArtifact");
      const sha256 = "local" in options ? options.local : DEV_SHA;
      return sha256 === undefined ? undefined : ({ sha256 } as Manifest);
    },
    confirm: async () => {
      calls.push("confirm");
      return options.confirm ?? true;
    },
    smoke: async (smoke) => {
      // The percentage the new version serves right now, as the smoke test would see it.
      const percent = prod.deployment().find((share) => share.versionId === NEW)?.percent;
      calls.push(`smoke ${smoke.versionOverride?.workerName}="${smoke.versionOverride?.versionId.slice(0, 4)}" at ${percent}`);
      expect(smoke).toMatchObject({ url: PROD_URL, adminToken: "prod-token", expectSha256: DEV_SHA });
      return percent === options.failAt ? FAIL : PASS;
    },
    steps: [0, 10, 50, 100],
    holdSeconds: options.holdSeconds ?? 0,
    sleep: async (ms) => {
      clock += ms;
    },
    now: () => clock,
    yes: options.yes ?? true,
    log: (line) => lines.push(line),
  };
  return { deps, calls, prod, output: () => lines.join("\n") };
}

describe("runPromotion", () => {
  it("uploads at 0 %, smoke-tests through the override, then moves traffic step by step with the stable version as the rest", async () => {
    const { deps, calls, prod, output } = setup();
    await runPromotion(deps);
    expect(calls).toEqual([
      "readArtifact",
      "prod.setRollout 0 1111",
      "prod.preview 0 1111",
      "prod.up 0 1111",
      `smoke ${WORKER}="2222" at 0`,
      "prod.setRollout 10 1111",
      "prod.upDeployment 10 1111",
      `smoke ${WORKER}="2222" at 10`,
      "prod.setRollout 50 1111",
      "prod.upDeployment 50 1111",
      `smoke ${WORKER}="2222" at 50`,
      "prod.setRollout 100 1111",
      "prod.upDeployment 100 1111",
      `smoke ${WORKER}="2222" at 100`,
    ]);
    expect(prod.deployment()).toEqual([{ versionId: NEW, percent: 100 }]);
    // The stable version stays on record as the rollback target.
    expect(prod.rollout()).toEqual({ percent: 100, stableVersionId: STABLE });
    expect(output()).toContain(`step 2/4: ${STABLE} 90 % + ${NEW} 10 %: 1 smoke run(s), 1 checks passed over 0 s`);
    expect(output()).toContain(`promoted sha256 ${DEV_SHA} from dev to prod: version ${NEW} at 100 %`);
  });

  it("keeps smoke-testing each step for --hold seconds", async () => {
    const { deps, calls } = setup({ holdSeconds: 25 });
    await runPromotion(deps);
    const runs = (percent: number) => calls.filter((call) => call.endsWith(`at ${percent}`)).length;
    // At 0, 10, 20 and 25 s: HOLD_INTERVAL_MS apart, the last at the end of the hold; the upload at 0 % is checked once.
    expect(HOLD_INTERVAL_MS).toBe(10_000);
    expect([runs(0), runs(10), runs(50), runs(100)]).toEqual([1, 4, 4, 4]);
  });

  it("puts all traffic back on the stable version when the smoke test fails at 0 %", async () => {
    const { deps, calls, prod, output } = setup({ failAt: 0 });
    await expect(runPromotion(deps)).rejects.toThrow(`prod: new version ${NEW} failed 1 smoke check(s) at 0 %; all traffic is back on ${STABLE}`);
    expect(calls.slice(-3)).toEqual([`smoke ${WORKER}="2222" at 0`, "prod.setRollout 0 1111", "prod.upDeployment 0 1111"]);
    expect(prod.deployment()).toEqual([
      { versionId: STABLE, percent: 100 },
      { versionId: NEW, percent: 0 },
    ]);
    expect(output()).toContain("✗ session read: answered 500");
  });

  it("puts all traffic back on the stable version when the smoke test fails mid-ramp, and goes no further", async () => {
    const { deps, calls, prod } = setup({ failAt: 50 });
    await expect(runPromotion(deps)).rejects.toThrow(/failed 1 smoke check\(s\) at 50 %; all traffic is back on/);
    expect(calls.slice(-4)).toEqual(["prod.upDeployment 50 1111", `smoke ${WORKER}="2222" at 50`, "prod.setRollout 0 1111", "prod.upDeployment 0 1111"]);
    expect(calls).not.toContain("prod.setRollout 100 1111");
    expect(prod.deployment()[0]).toEqual({ versionId: STABLE, percent: 100 });
  });

  it("refuses before anything changes when dist/ holds another bundle, showing both hashes", async () => {
    const { deps, calls } = setup({ local: OTHER_SHA });
    const refusal = runPromotion(deps);
    await expect(refusal).rejects.toThrow(/refusing to promote/);
    await refusal.catch((error: Error) => {
      expect(error.message).toContain(`dev runs   sha256 ${DEV_SHA}`);
      expect(error.message).toContain(`dist/ holds  sha256 ${OTHER_SHA}`);
    });
    expect(calls).toEqual(["readArtifact"]);
  });

  it("refuses when there is no local build at all, or the source stack reports no bundle", async () => {
    const noBuild = setup({ local: undefined });
    await expect(runPromotion(noBuild.deps)).rejects.toThrow(/no build \(dist\/manifest.json is missing\)/);
    expect(noBuild.calls).toEqual(["readArtifact"]);
    const noBundle = setup({ dev: { outputs: async () => ({}) } });
    await expect(runPromotion(noBundle.deps)).rejects.toThrow(/stack "dev" has no bundleSha256 output/);
    expect(noBundle.calls).toEqual([]);
  });

  it("sends a first release to 100 % at once, then smoke-tests it: there is nothing to split with", async () => {
    const { deps, calls, prod } = setup({ firstRelease: true });
    await runPromotion(deps);
    expect(calls).toEqual(["readArtifact", "prod.setRollout 100", "prod.preview 100", "prod.up 100", `smoke ${WORKER}="2222" at 100`]);
    expect(prod.deployment()).toEqual([{ versionId: NEW, percent: 100 }]);
  });

  it("stops before the update when the preview fails, with the rollout config as it was", async () => {
    const { deps, calls, prod } = setup();
    deps.to.preview = async () => {
      throw new Error('pulumi preview of stack "prod" failed');
    };
    await expect(runPromotion(deps)).rejects.toThrow(/preview of stack "prod" failed/);
    expect(calls).toEqual(["readArtifact", "prod.setRollout 0 1111", "prod.setRollout 100"]);
    expect(prod.rollout()).toEqual({ percent: 100 });
  });

  it("asks before the update without --yes, and restores the rollout config when the answer is no", async () => {
    const { deps, calls, prod } = setup({ yes: false, confirm: false });
    await expect(runPromotion(deps)).rejects.toThrow("promotion cancelled; prod was not changed");
    expect(calls).toEqual(["readArtifact", "prod.setRollout 0 1111", "prod.preview 0 1111", "confirm", "prod.setRollout 100"]);
    expect(prod.rollout()).toEqual({ percent: 100 });
  });
});

describe("parseSteps", () => {
  it("takes ascending percentages ending at 100", () => {
    expect(parseSteps("0,10,100")).toEqual([0, 10, 100]);
    for (const bad of ["10,5,100", "0,10,50", "0,150", "0,x,100", "0,10,10,100"]) expect(() => parseSteps(bad)).toThrow(/ascending percentages/);
  });
});

describe("runRollback", () => {
  function rollback(state: Parameters<typeof fakeStack>[2], to?: string) {
    const calls: string[] = [];
    const lines: string[] = [];
    const stack = fakeStack("prod", calls, state);
    const deps: RollbackDeps = { stack: stack.ops, to, confirm: async () => true, yes: true, log: (line) => lines.push(line) };
    return { run: () => runRollback(deps), calls, stack, output: () => lines.join("\n") };
  }

  it("puts 100 % back on the stable version of the last promotion, moving traffic only: no upload, no build", async () => {
    const { run, calls, stack, output } = rollback({ uploaded: NEW, deployment: [{ versionId: NEW, percent: 100 }], rollout: { percent: 100, stableVersionId: STABLE } });
    await run();
    expect(calls).toEqual(["prod.setRollout 0 1111", "prod.upDeployment 0 1111"]);
    expect(stack.deployment()).toEqual([
      { versionId: STABLE, percent: 100 },
      { versionId: NEW, percent: 0 },
    ]);
    expect(output()).toContain(`prod now:    ${NEW} 100 %`);
    expect(output()).toContain(`✓ rolled back prod: ${STABLE} 100 % + ${NEW} 0 %`);
    expect(output()).toContain("pulumi stack output deployment --stack prod");
    expect(output()).toContain("pulumi stack history --stack prod");
  });

  it("finds the stable version in the stack outputs when the local config has none, as in a fresh CI checkout", async () => {
    const { run, stack } = rollback({ uploaded: NEW, deployment: [{ versionId: NEW, percent: 100 }] });
    const outputs = stack.ops.outputs;
    stack.ops.outputs = async () => ({ ...(await outputs()), stableVersionId: STABLE });
    await run();
    expect(stack.deployment()[0]).toEqual({ versionId: STABLE, percent: 100 });
  });

  it("rolls back to the version given with --to", async () => {
    const { run, stack } = rollback({ uploaded: NEW, deployment: [{ versionId: NEW, percent: 100 }], rollout: { percent: 100, stableVersionId: STABLE } }, OLDER);
    await run();
    expect(stack.deployment()[0]).toEqual({ versionId: OLDER, percent: 100 });
  });

  it("takes a split in progress back to its stable version", async () => {
    const { run, stack } = rollback({
      uploaded: NEW,
      deployment: [
        { versionId: NEW, percent: 60 },
        { versionId: STABLE, percent: 40 },
      ],
      rollout: { percent: 60, stableVersionId: STABLE },
    });
    await run();
    expect(stack.deployment()[0]).toEqual({ versionId: STABLE, percent: 100 });
  });

  it("refuses, saying where version ids are, when no previous version is known", async () => {
    const { run, calls } = rollback({ uploaded: NEW, deployment: [{ versionId: NEW, percent: 100 }] });
    await expect(run()).rejects.toThrow(/no previous stable version on record; pass --to <versionId>\. Version ids: `pulumi stack output deployment --stack prod`/);
    expect(calls).toEqual([]);
  });

  it("refuses a --to that is not a version id", async () => {
    const { run } = rollback({ uploaded: NEW, deployment: [{ versionId: NEW, percent: 100 }] }, "v42");
    await expect(run()).rejects.toThrow(/--to v42 is not a Worker version id/);
  });
});
