/**
 * What a flag is: a flagd flag definition (flagd.dev/reference/flag-definitions),
 * or the seed's shorthand `{enabled, percentage?, allowedUsers?, metadata?}`,
 * kept as written so it evaluates exactly as it always has (../evaluate).
 */
import * as v from "valibot";

/** The seed's flag: on or off, an allow-list of user ids, a percentage rollout (../evaluate). */
export const Shorthand = v.strictObject({
  enabled: v.boolean(),
  percentage: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100))),
  allowedUsers: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(256))), v.maxLength(1000))),
  metadata: v.optional(v.record(v.string(), v.unknown())),
});
export type Shorthand = v.InferOutput<typeof Shorthand>;

export type FlagValue = null | boolean | number | string | FlagValue[] | { [key: string]: FlagValue };

/** One flag in flagd's format. `defaultVariant` absent or null: the caller's code default. */
export interface FlagdFlag {
  state: "ENABLED" | "DISABLED";
  variants: Record<string, FlagValue>;
  defaultVariant?: string | null;
  /** JSON Logic with flagd's operators; `{}` or absent means no targeting. */
  targeting?: unknown;
  metadata?: Record<string, string | number | boolean>;
}

/** A flag as stored and evaluated: flagd's format or the shorthand. */
export type FlagDefinition = FlagdFlag | Shorthand;

/** A flagd flags file: `flags`, shared `$evaluators`, optional set `metadata`. */
export interface FlagDocument {
  $schema?: string;
  flags: Record<string, FlagDefinition>;
  $evaluators?: Record<string, unknown>;
  metadata?: Record<string, string | number | boolean>;
}

export const FLAGD_SCHEMA_URL = "https://flagd.dev/schema/v0/flags.json";

export const isShorthand = (flag: FlagDefinition): flag is Shorthand => "enabled" in flag && !("state" in flag);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The structural reading of a stored or incoming definition, the part flagd
 * itself refuses even without schema validation: a state, a non-empty
 * variants map, a default variant that is null or one of the variants.
 * Undefined when it is neither form (a stored value that is not a flag).
 */
export function readDefinition(value: unknown): FlagDefinition | undefined {
  if (!isRecord(value)) return undefined;
  if ("state" in value) {
    const { state, variants, defaultVariant } = value;
    if (state !== "ENABLED" && state !== "DISABLED") return undefined;
    if (!isRecord(variants) || Object.keys(variants).length === 0) return undefined;
    if (defaultVariant !== undefined && defaultVariant !== null && (typeof defaultVariant !== "string" || !Object.hasOwn(variants, defaultVariant))) {
      return undefined;
    }
    if (value.metadata !== undefined && !isRecord(value.metadata)) return undefined;
    return value as unknown as FlagdFlag;
  }
  const parsed = v.safeParse(Shorthand, value);
  return parsed.success ? parsed.output : undefined;
}

/** What an evaluator (a `$evaluators` entry) must be: a JSON Logic rule, i.e. a JSON object. */
export const readEvaluator = (value: unknown): Record<string, unknown> | undefined => (isRecord(value) ? value : undefined);

/** The names a rule refers to with `{"$ref": name}`. */
export function evaluatorRefs(rule: unknown, into: Set<string> = new Set()): Set<string> {
  if (Array.isArray(rule)) for (const item of rule) evaluatorRefs(item, into);
  else if (isRecord(rule)) {
    const keys = Object.keys(rule);
    if (keys.length === 1 && keys[0] === "$ref" && typeof rule.$ref === "string") into.add(rule.$ref);
    else for (const key of keys) evaluatorRefs(rule[key], into);
  }
  return into;
}

/**
 * The flag with each `{"$ref": name}` in its targeting replaced by that
 * evaluator's rule, as flagd does when it loads a file, so that a cached flag
 * evaluates without looking anything up. A reference to an evaluator that
 * does not exist is left in place and evaluates as PARSE_ERROR.
 */
export function inlineEvaluators(flag: FlagDefinition, evaluators: Record<string, unknown>): FlagDefinition {
  if (isShorthand(flag) || flag.targeting === undefined) return flag;
  const inline = (rule: unknown, depth: number): unknown => {
    if (Array.isArray(rule)) return rule.map((item) => inline(item, depth));
    if (!isRecord(rule)) return rule;
    const keys = Object.keys(rule);
    if (keys.length === 1 && keys[0] === "$ref" && typeof rule.$ref === "string" && Object.hasOwn(evaluators, rule.$ref) && depth < 8) {
      return inline(evaluators[rule.$ref], depth + 1);
    }
    return Object.fromEntries(keys.map((key) => [key, inline(rule[key], depth)]));
  };
  return { ...flag, targeting: inline(flag.targeting, 0) };
}

/** JSON with every object's keys sorted, so that two definitions written in a different key order compare equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isRecord(value)) {
    return `{${Object.keys(value)
      .sort()
      .filter((key) => value[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
