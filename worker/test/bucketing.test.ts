import { describe, expect, it } from "vitest";
import { bucketOf } from "../src/bucketing";
import type { Flag } from "../src/contract";
import { evaluateFlag } from "../src/evaluate";

const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

describe("bucketOf", () => {
  it("is SHA-256 of <flag>:<userId>, first four bytes big-endian, modulo 10,000 (pinned so other SDKs can agree)", async () => {
    expect(await bucketOf("checkout", "user-1")).toBe(6971);
    expect(await bucketOf("new-ui", "alice")).toBe(3948);
  });

  it("gives the same user the same bucket every time", async () => {
    const first = await Promise.all(users.slice(0, 200).map((u) => bucketOf("checkout", u)));
    const again = await Promise.all(users.slice(0, 200).map((u) => bucketOf("checkout", u)));
    expect(again).toEqual(first);
  });

  it("puts 25% ± 1.5% of 10,000 users under a 25% rollout", async () => {
    const buckets = await Promise.all(users.map((u) => bucketOf("checkout", u)));
    const on = buckets.filter((b) => b < 2500).length;
    expect(on).toBeGreaterThanOrEqual(2350);
    expect(on).toBeLessThanOrEqual(2650);
    expect(Math.min(...buckets)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...buckets)).toBeLessThanOrEqual(9999);
  });

  it("spreads users evenly over all ten deciles", async () => {
    const deciles = Array(10).fill(0) as number[];
    for (const b of await Promise.all(users.map((u) => bucketOf("search", u)))) deciles[Math.floor(b / 1000)]! += 1;
    for (const count of deciles) expect(Math.abs(count - 1000)).toBeLessThan(120);
  });

  it("buckets the same user independently per flag, so 50% rollouts of two flags overlap on about 25%", async () => {
    const [a, b] = await Promise.all(
      ["flag-a", "flag-b"].map((flag) => Promise.all(users.map((u) => bucketOf(flag, u)))),
    );
    const both = users.filter((_, i) => a![i]! < 5000 && b![i]! < 5000).length;
    expect(Math.abs(both - 2500)).toBeLessThan(200);
  });
});

describe("evaluateFlag", () => {
  const on: Flag = { enabled: true };

  it.each<[string, Flag | undefined, string | undefined, boolean, string]>([
    ["a missing flag is off", undefined, "alice", false, "DEFAULT"],
    ["enabled: false is off even for an allow-listed user", { enabled: false, allowedUsers: ["alice"] }, "alice", false, "DISABLED"],
    ["an allow-listed user is on", { enabled: true, percentage: 0, allowedUsers: ["alice"] }, "alice", true, "TARGETING_MATCH"],
    ["percentage 0 plus an allow-list is off for everyone else", { enabled: true, percentage: 0, allowedUsers: ["alice"] }, "bob", false, "SPLIT"],
    ["a 100% rollout is on for any user", { enabled: true, percentage: 100 }, "bob", true, "SPLIT"],
    ["a rollout is off for an anonymous caller", { enabled: true, percentage: 100 }, undefined, false, "DEFAULT"],
    ["an enabled flag without a rollout is on", on, undefined, true, "STATIC"],
    ["an allow-list adds users to an enabled flag", { enabled: true, allowedUsers: ["alice"] }, "bob", true, "STATIC"],
  ])("%s", async (_, flag, userId, enabled, reason) => {
    expect(await evaluateFlag("f", flag, userId)).toEqual({ enabled, reason });
  });

  it("switches a user on exactly when their bucket is below percentage × 100 (0.01% granularity)", async () => {
    const bucket = await bucketOf("f", "user-1");
    const at = (percentage: number) => evaluateFlag("f", { enabled: true, percentage }, "user-1");
    expect((await at(bucket / 100)).enabled).toBe(false);
    expect((await at((bucket + 1) / 100)).enabled).toBe(true);
  });
});
