import { describe, expect, it } from "vitest";
import { Handoff } from "../src/handoff";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const options = { claimMs: 500, keepMs: 1000, maxEntries: 10, pollMs: 5 };

describe("Handoff", () => {
  it("runs the work once for concurrent callers and hands the others its outcome", async () => {
    const handoff = new Handoff<string>(Date.now, options);
    let runs = 0;
    const work = async () => {
      runs += 1;
      await sleep(30);
      return "fetched";
    };
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => handoff.run("p1", work)));
    expect(outcomes).toEqual(Array(20).fill("fetched"));
    expect(runs).toBe(1);
  });

  it("hands keepAlive the leader's run only, with its failure already handled", async () => {
    const handoff = new Handoff<string>(Date.now, options);
    const kept: Promise<unknown>[] = [];
    const work = async () => {
      await sleep(20);
      throw new Error("origin down");
    };
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => handoff.run("p1", work, (running) => kept.push(running))));
    expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
    // Each caller led in turn (a failed run hands nothing over); each kept promise settles without rejecting.
    expect(kept).toHaveLength(5);
    await expect(Promise.all(kept)).resolves.toBeDefined();
  });

  it("keeps keys apart", async () => {
    const handoff = new Handoff<string>(Date.now, options);
    const outcomes = await Promise.all(["a", "b", "a"].map((key) => handoff.run(key, async () => (await sleep(10), key))));
    expect(outcomes).toEqual(["a", "b", "a"]);
  });

  it("fails only the caller whose work failed; a waiting caller then runs the work itself", async () => {
    const handoff = new Handoff<string>(Date.now, options);
    let runs = 0;
    const work = async () => {
      runs += 1;
      await sleep(20);
      if (runs === 1) throw new Error("origin down");
      return "second try";
    };
    const [first, second] = await Promise.allSettled([handoff.run("p1", work), handoff.run("p1", work)]);
    expect(first).toMatchObject({ status: "rejected", reason: new Error("origin down") });
    expect(second).toEqual({ status: "fulfilled", value: "second try" });
    expect(runs).toBe(2);
  });

  it("lets a waiting caller take over once a claim lapses (the claiming request was cancelled)", async () => {
    const handoff = new Handoff<string>(Date.now, { ...options, claimMs: 50 });
    void handoff.run("p1", () => new Promise<string>(() => {}));
    const started = Date.now();
    expect(await handoff.run("p1", async () => "taken over")).toBe("taken over");
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it("runs the work uncoordinated rather than wait forever when the clock does not move", async () => {
    const frozen = () => 0;
    const handoff = new Handoff<string>(frozen, { ...options, claimMs: 20 });
    void handoff.run("p1", () => new Promise<string>(() => {}));
    expect(await handoff.run("p1", async () => "mine")).toBe("mine");
  });

  it("starts the work afresh once an outcome was published: a later caller does not reuse it", async () => {
    const handoff = new Handoff<number>(Date.now, options);
    let runs = 0;
    const work = async () => ++runs;
    expect(await handoff.run("p1", work)).toBe(1);
    expect(await handoff.run("p1", work)).toBe(2);
  });

  it("says whether another caller is on a key", async () => {
    const handoff = new Handoff<string>(Date.now, options);
    const running = handoff.run("p1", async () => (await sleep(20), "done"));
    expect(handoff.busy("p1")).toBe(true);
    expect(handoff.busy("p2")).toBe(false);
    await running;
    expect(handoff.busy("p1")).toBe(false);
  });
});
