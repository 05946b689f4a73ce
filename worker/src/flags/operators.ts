/**
 * flagd's custom JSON Logic operators (flagd.dev/reference/custom-operations):
 * `fractional`, `sem_ver`, `starts_with`, `ends_with`. Like flagd, an
 * operator given input it cannot use answers null (not false), so the flag
 * falls back to its default variant.
 */
import { murmurHash3OfText } from "../bucketing";
import type { Data, Operation } from "./json-logic";

const TWO_TO_32 = 2 ** 32;

/**
 * `fractional`: a stable split of callers over weighted buckets. The first
 * argument is the bucketing value (a string), or absent: then the value is
 * `$flagd.flagKey` + `targetingKey` (flagd's shorthand). The bucket is flagd's
 * current (v2) bucketing: MurmurHash3 x86 32 (seed 0) of the value's UTF-8
 * bytes, scaled to the total weight as `(hash * total) >> 32`, then walked
 * through the cumulative weights. Negative weights count as 0, a missing
 * weight as 1; an all-zero split answers null.
 */
export const fractional: Operation = (args, _data, scope) => {
  let value: unknown;
  let buckets: unknown[];
  if (Array.isArray(args[0])) {
    const root = scope.root as Data & { $flagd?: { flagKey?: unknown } };
    const targetingKey = root.targetingKey;
    if (typeof targetingKey !== "string") return null;
    value = `${String(root.$flagd?.flagKey ?? "")}${targetingKey}`;
    buckets = args;
  } else {
    value = args[0];
    buckets = args.slice(1);
  }
  if (typeof value !== "string" || buckets.length === 0) return null;
  const entries: [unknown, number][] = [];
  let total = 0;
  for (const bucket of buckets) {
    if (!Array.isArray(bucket) || bucket.length === 0) return null;
    const raw = bucket.length >= 2 ? bucket[1] : 1;
    const weight = typeof raw === "number" && Number.isFinite(raw) ? Math.max(0, Math.trunc(raw)) : 0;
    entries.push([bucket[0], weight]);
    total += weight;
  }
  if (total === 0) return null;
  const hash = murmurHash3OfText(value);
  const point =
    total < 2 ** 21 ? Math.floor((hash * total) / TWO_TO_32) : Number((BigInt(hash) * BigInt(total)) >> 32n);
  let end = 0;
  for (const [variant, weight] of entries) {
    end += weight;
    if (point < end) return variant;
  }
  return null;
};

const stringPair = (args: unknown[]) => args.length === 2 && typeof args[0] === "string" && typeof args[1] === "string";
export const startsWith: Operation = (args) => (stringPair(args) ? (args[0] as string).startsWith(args[1] as string) : null);
export const endsWith: Operation = (args) => (stringPair(args) ? (args[0] as string).endsWith(args[1] as string) : null);

interface Version {
  core: [number, number, number];
  pre: string[];
}

const SEMVER = /^[vV]?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

/** A version as flagd reads it: an optional v, missing minor/patch as 0, build metadata ignored; a number is read as its decimal text. */
function parseVersion(raw: unknown): Version | undefined {
  const text = typeof raw === "number" && Number.isFinite(raw) ? String(raw) : raw;
  if (typeof text !== "string") return undefined;
  const match = SEMVER.exec(text.trim());
  if (!match) return undefined;
  return { core: [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)], pre: match[4] ? match[4].split(".") : [] };
}

/** Semantic Versioning 2.0.0 precedence (§11): core numerically, then a pre-release sorts before its release. */
function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a.core[i] !== b.core[i]) return a.core[i]! < b.core[i]! ? -1 : 1;
  if (a.pre.length === 0 || b.pre.length === 0) return b.pre.length - a.pre.length;
  for (let i = 0; i < Math.min(a.pre.length, b.pre.length); i++) {
    const [x, y] = [a.pre[i]!, b.pre[i]!];
    if (x === y) continue;
    const [xn, yn] = [/^\d+$/.test(x), /^\d+$/.test(y)];
    if (xn && yn) return Number(x) < Number(y) ? -1 : 1;
    if (xn !== yn) return xn ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return a.pre.length - b.pre.length;
}

/** `sem_ver`: [version, operator, target] with =, !=, <, <=, >, >=, ^ (same major), ~ (same major and minor). */
export const semVer: Operation = (args) => {
  if (args.length !== 3) return null;
  const [left, op, right] = [parseVersion(args[0]), args[1], parseVersion(args[2])];
  if (!left || !right) return null;
  const order = compareVersions(left, right);
  switch (op) {
    case "=":
      return order === 0;
    case "!=":
      return order !== 0;
    case "<":
      return order < 0;
    case "<=":
      return order <= 0;
    case ">":
      return order > 0;
    case ">=":
      return order >= 0;
    case "^":
      return left.core[0] === right.core[0];
    case "~":
      return left.core[0] === right.core[0] && left.core[1] === right.core[1];
    default:
      return null;
  }
};

export const FLAGD_OPERATORS: Record<string, Operation> = {
  fractional,
  sem_ver: semVer,
  starts_with: startsWith,
  ends_with: endsWith,
};
