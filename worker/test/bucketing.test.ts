import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bucketOf, murmurHash3 } from "../src/bucketing";
import type { Flag } from "../src/contract";
import { evaluateFlag } from "../src/evaluate";

const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
const utf8 = new TextEncoder();

describe("murmurHash3", () => {
  // Published vectors for MurmurHash3_x86_32; they cover every tail length (0-3 bytes) and multi-byte UTF-8.
  it.each<[string, number, number]>([
    ["", 0, 0],
    ["", 1, 0x514e28b7],
    ["", 0xffffffff, 0x81f16f39],
    ["\0\0\0\0", 0, 0x2362f9de],
    ["a", 0x9747b28c, 0x7fa09ea6],
    ["ab", 0x9747b28c, 0x74875592],
    ["abc", 0x9747b28c, 0xc84a62dd],
    ["abcd", 0x9747b28c, 0xf0478627],
    ["aaaa", 0x9747b28c, 0x5a97808a],
    ["Hello, world!", 0x9747b28c, 0x24884cba],
    ["ππππππππ", 0x9747b28c, 0xd58063c1],
    ["The quick brown fox jumps over the lazy dog", 0x9747b28c, 0x2fa826cd],
    ["The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723],
  ])("hashes %j with seed %i to the reference value", (input, seed, expected) => {
    expect(murmurHash3(utf8.encode(input), seed)).toBe(expected);
  });
});

describe("bucketOf", () => {
  it("is MurmurHash3 (x86, 32-bit, seed 0) of <flag>:<userId> in UTF-8, modulo 10,000 (pinned so other SDKs can agree)", () => {
    expect(bucketOf("checkout", "user-1")).toBe(2333);
    expect(bucketOf("new-ui", "alice")).toBe(6695);
    expect(bucketOf("new-ui", "zoë")).toBe(4124);
  });

  it("gives the same user the same bucket every time", () => {
    const first = users.slice(0, 200).map((u) => bucketOf("checkout", u));
    const again = users.slice(0, 200).map((u) => bucketOf("checkout", u));
    expect(again).toEqual(first);
  });

  it("puts 25% ± 1.5% of 10,000 users under a 25% rollout", () => {
    const buckets = users.map((u) => bucketOf("checkout", u));
    const on = buckets.filter((b) => b < 2500).length;
    expect(on).toBeGreaterThanOrEqual(2350);
    expect(on).toBeLessThanOrEqual(2650);
    expect(Math.min(...buckets)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...buckets)).toBeLessThanOrEqual(9999);
  });

  it("spreads users evenly over all ten deciles", () => {
    const deciles = Array(10).fill(0) as number[];
    for (const b of users.map((u) => bucketOf("search", u))) deciles[Math.floor(b / 1000)]! += 1;
    for (const count of deciles) expect(Math.abs(count - 1000)).toBeLessThan(120);
  });

  it("passes a chi-square test of uniformity over the 100 whole percentages", () => {
    const counts = Array(100).fill(0) as number[];
    for (const b of users.map((u) => bucketOf("checkout", u))) counts[Math.floor(b / 100)]! += 1;
    const expected = users.length / 100;
    const chiSquare = counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
    // 99 degrees of freedom: a uniform hash exceeds 148.2 with probability 0.001.
    expect(chiSquare).toBeLessThan(148.2);
  });

  it("buckets the same user independently per flag, so 50% rollouts of two flags overlap on about 25%", () => {
    const [a, b] = ["flag-a", "flag-b"].map((flag) => users.map((u) => bucketOf(flag, u)));
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
  ])("%s", (_, flag, userId, enabled, reason) => {
    expect(evaluateFlag("f", flag, userId)).toEqual({ enabled, reason });
  });

  it("switches a user on exactly when their bucket is below percentage × 100 (0.01% granularity)", () => {
    const bucket = bucketOf("f", "user-1");
    const at = (percentage: number) => evaluateFlag("f", { enabled: true, percentage }, "user-1");
    expect(at(bucket / 100).enabled).toBe(false);
    expect(at((bucket + 1) / 100).enabled).toBe(true);
  });
});

describe("bucketOf's bytes", () => {
  // ASCII keys skip TextEncoder; any key must still hash its UTF-8 bytes.
  it("hashes the UTF-8 bytes of <flag>:<userId> for ASCII, non-ASCII and over-long user ids alike", () => {
    const reference = (flag: string, userId: string) => murmurHash3(utf8.encode(`${flag}:${userId}`)) % 10_000;
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 }), fc.string({ minLength: 1020, maxLength: 1100 })), (flag, userId) => {
        expect(bucketOf(flag, userId)).toBe(reference(flag, userId));
      }),
      { numRuns: 200 },
    );
    for (const userId of ["élodie", "用户-1", "😀", "a".repeat(2000), "u-1"]) expect(bucketOf("checkout", userId)).toBe(reference("checkout", userId));
  });
});
