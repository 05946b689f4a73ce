/**
 * The flag engine library (src/flags): flagd's semantics, schema validation
 * naming flag and path, and the shorthand's unchanged buckets.
 */
import { describe, expect, it } from "vitest";
import { murmurHash3 } from "../src/bucketing";
import { evaluate, type FlagdFlag, inlineEvaluators, validateDocument } from "../src/flags";

const utf8 = new TextEncoder();
const strings = (targeting: unknown, variants = ["a", "b", "c"]): FlagdFlag => ({
  state: "ENABLED",
  variants: Object.fromEntries(variants.map((v) => [v, v])),
  defaultVariant: variants[variants.length - 1]!,
  targeting,
});

describe("the shorthand after the upgrade", () => {
  // The pre-upgrade rule, written out independently of src/: MurmurHash3 of "<flag>:<user>" modulo 10,000 under percentage × 100.
  const before = (flag: string, user: string, percentage: number) => murmurHash3(utf8.encode(`${flag}:${user}`)) % 10_000 < percentage * 100;
  const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}-${(i * 2654435761) % 1_000_003}`);

  it.each([1, 10, 12.5, 50, 99.99])("flips none of 10,000 users of a rollout to %d percent", (percentage) => {
    const flips = users.filter((user) => evaluate("new-checkout", { enabled: true, percentage }, { targetingKey: user }).value !== before("new-checkout", user, percentage));
    expect(flips).toEqual([]);
  });

  it("keeps the reasons and the on/off variants", () => {
    expect(evaluate("f", { enabled: false }, { targetingKey: "a" })).toEqual({ value: false, variant: "off", reason: "DISABLED", metadata: {} });
    expect(evaluate("f", { enabled: true, allowedUsers: ["a"], percentage: 0 }, { targetingKey: "a" })).toMatchObject({ value: true, reason: "TARGETING_MATCH" });
    expect(evaluate("f", { enabled: true, percentage: 50 }, {})).toMatchObject({ value: false, reason: "DEFAULT" });
    expect(evaluate("f", { enabled: true }, {})).toMatchObject({ value: true, variant: "on", reason: "STATIC" });
  });
});

describe("flagd evaluation", () => {
  it("answers the default variant as STATIC without targeting, and the code default (no value) when there is none", () => {
    expect(evaluate("f", { state: "ENABLED", variants: { x: 1 }, defaultVariant: "x" })).toEqual({ value: 1, variant: "x", reason: "STATIC", metadata: {} });
    expect(evaluate("f", { state: "ENABLED", variants: { x: 1 }, defaultVariant: null })).toEqual({ reason: "DEFAULT", metadata: {} });
    expect(evaluate("f", { state: "DISABLED", variants: { x: 1 }, defaultVariant: "x" })).toEqual({ reason: "DISABLED", metadata: {} });
  });

  it("matches a rule on any context attribute, falls back to the default variant on null", () => {
    const flag = strings({ if: [{ ends_with: [{ var: "email" }, "@example.com"] }, "a", null] });
    expect(evaluate("f", flag, { email: "ada@example.com" })).toMatchObject({ value: "a", reason: "TARGETING_MATCH" });
    expect(evaluate("f", flag, { email: "ada@other.org" })).toMatchObject({ value: "c", variant: "c", reason: "DEFAULT" });
  });

  it("reads $flagd.flagKey and $flagd.timestamp (seconds)", () => {
    const flag = strings({ if: [{ and: [{ "==": [{ var: "$flagd.flagKey" }, "f"] }, { ">": [{ var: "$flagd.timestamp" }, 1000] }] }, "a", "b"] });
    expect(evaluate("f", flag, {}, { now: 1_001_000 }).value).toBe("a");
    expect(evaluate("f", flag, {}, { now: 999_000 }).value).toBe("b");
  });

  it("turns a boolean result into the variant named true/false", () => {
    const flag: FlagdFlag = { state: "ENABLED", variants: { true: 2, false: 1 }, defaultVariant: "false", targeting: { in: [{ var: "tier" }, ["gold"]] } };
    expect(evaluate("f", flag, { tier: "gold" })).toMatchObject({ value: 2, variant: "true" });
  });

  it("answers PARSE_ERROR for an unknown operation or a $ref to no evaluator, GENERAL for a variant the flag lacks", () => {
    expect(evaluate("f", strings({ nope: [1] }))).toMatchObject({ reason: "ERROR", errorCode: "PARSE_ERROR" });
    expect(evaluate("f", strings({ if: [{ $ref: "missing" }, "a", "b"] }))).toMatchObject({ errorCode: "PARSE_ERROR" });
    expect(evaluate("f", strings({ if: [true, "zzz", "a"] }))).toMatchObject({ errorCode: "GENERAL" });
  });

  it("resolves $ref through the document's evaluators, inline or looked up", () => {
    const flag = strings({ if: [{ $ref: "gold" }, "a", "b"] });
    const evaluators = { gold: { "==": [{ var: "tier" }, "gold"] } };
    expect(evaluate("f", flag, { tier: "gold" }, { evaluators }).value).toBe("a");
    expect(evaluate("f", inlineEvaluators(flag, evaluators), { tier: "gold" }).value).toBe("a");
  });

  it("buckets fractional with flagd's v2 bucketing: (murmur3(value) × total) >> 32 over cumulative weights", () => {
    const flag = strings({ fractional: [{ var: "id" }, ["a", 50], ["b", 50]] });
    // Hash edge cases from the flagd testbed: 0 and i32::MAX fall in the lower half, 2^31 and u32::MAX in the upper.
    for (const [id, value] of [["ejOoVL", "a"], ["SI7p-", "a"], ["6LvT0", "b"], ["ceQdGm", "b"]] as const) {
      expect(evaluate("f", flag, { id }).value, id).toBe(value);
    }
    expect(evaluate("f", strings({ fractional: [{ var: "id" }, ["a", 0], ["b", 0]] }), { id: "x" }).reason).toBe("DEFAULT");
  });

  it("compares versions with sem_ver, and answers null (default variant) for what it cannot read", () => {
    const at = (version: unknown, op: string, target: string) => evaluate("f", strings({ if: [{ sem_ver: [{ var: "v" }, op, target] }, "a", "b"] }), { v: version }).value;
    expect(at("2.0.0-alpha", "<", "2.0.0")).toBe("a");
    expect(at("v1.2.3", "=", "1.2.3")).toBe("a");
    expect(at(1.2, ">", "1.1")).toBe("a");
    expect(at("1.9.0", "^", "1.0.0")).toBe("a");
    expect(at("1.9.0", "~", "1.0.0")).toBe("b");
    expect(at("not-a-version", "=", "1.0.0")).toBe("b");
  });
});

describe("validation with flagd's schema", () => {
  it("names the flag and the JSON path of the first problem", () => {
    const { errors } = validateDocument({ flags: { checkout: { state: "ENABLED", variants: { on: true }, defaultVariant: "on", targeting: { sem_ver: [{ var: "v" }, "===", "1.0.0"] } } } });
    expect(errors).toEqual([{ where: "flags.checkout", path: "/targeting/sem_ver/1", message: expect.stringContaining("allowed values") }]);
  });

  it("refuses a default variant that is not a variant, and an unknown state", () => {
    expect(validateDocument({ flags: { a: { state: "ENABLED", variants: { on: true }, defaultVariant: "off" } } }).errors[0]).toMatchObject({ where: "flags.a", path: "/defaultVariant" });
    expect(validateDocument({ flags: { a: { state: "ON", variants: { on: true } } } }).errors[0]).toMatchObject({ where: "flags.a", path: "/state" });
  });

  it("checks shorthand flags with their own schema and flagd ones with flagd's, in one document", () => {
    const { errors } = validateDocument({ flags: { old: { enabled: true, percentage: 101 }, typed: { state: "ENABLED", variants: { s: "x" }, defaultVariant: "s" } } });
    expect(errors).toEqual([{ where: "flags.old", path: "/percentage", message: expect.any(String) }]);
  });

  it("with lenient, loads a rule the schema refuses as a warning, as flagd does, but never a broken structure", () => {
    const document = { flags: { a: { state: "ENABLED", variants: { on: true }, defaultVariant: "on", targeting: { invalid: [1] } }, b: { state: "ENABLED", variants: {} } } };
    const { errors, warnings } = validateDocument(document, { lenient: true });
    expect(warnings.map((w) => w.where)).toEqual(["flags.a"]);
    expect(errors.map((e) => e.where)).toEqual(["flags.b"]);
  });
});
