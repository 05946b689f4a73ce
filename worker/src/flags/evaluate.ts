/**
 * Resolves one flag for one evaluation context, as flagd does: a disabled
 * flag answers DISABLED with the caller's default; no targeting answers the
 * default variant (STATIC); targeting that returns a variant name answers it
 * (TARGETING_MATCH); null answers the default variant (DEFAULT); a rule that
 * cannot run is PARSE_ERROR; a variant that does not exist is GENERAL. A
 * default variant that is absent or null means the caller's code default: no
 * value, no variant. The shorthand keeps its own rules (../evaluate).
 */
import { evaluateFlag as evaluateShorthand } from "../evaluate";
import { createInterpreter, type Data, RuleError } from "./json-logic";
import { type FlagDefinition, type FlagValue, isShorthand } from "./model";
import { FLAGD_OPERATORS } from "./operators";

export type Reason = "STATIC" | "TARGETING_MATCH" | "SPLIT" | "DEFAULT" | "DISABLED" | "ERROR";
export type ErrorCode = "PARSE_ERROR" | "GENERAL";

export interface Resolution {
  /** Absent when the caller's code default applies. */
  value?: FlagValue;
  variant?: string;
  reason: Reason;
  errorCode?: ErrorCode;
  errorMessage?: string;
  /** The flag's metadata entries whose values are primitives (what OpenFeature's flag metadata can hold). */
  metadata: Record<string, string | number | boolean>;
}

export type EvaluationContext = Record<string, unknown> & { targetingKey?: string };

export interface EvaluateOptions {
  /** The document's `$evaluators`, for `{"$ref": name}`. */
  evaluators?: Record<string, unknown>;
  /** Epoch milliseconds, for `$flagd.timestamp` (seconds). */
  now?: number;
}

const run = createInterpreter(FLAGD_OPERATORS);

function primitiveMetadata(metadata: Record<string, unknown> | undefined): Resolution["metadata"] {
  const out: Resolution["metadata"] = {};
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") out[key] = value;
  }
  return out;
}

/** Absent, null and `{}` mean no targeting (checked without allocating: this runs per evaluation). */
function hasTargeting(targeting: unknown): boolean {
  if (targeting === undefined || targeting === null) return false;
  if (typeof targeting !== "object" || Array.isArray(targeting)) return true;
  for (const _ in targeting) return true;
  return false;
}

export function evaluate(key: string, flag: FlagDefinition, context: EvaluationContext = {}, options: EvaluateOptions = {}): Resolution {
  const metadata = primitiveMetadata(flag.metadata);
  if (isShorthand(flag)) {
    const targetingKey = typeof context.targetingKey === "string" ? context.targetingKey : undefined;
    const { enabled, reason } = evaluateShorthand(key, flag, targetingKey);
    return { value: enabled, variant: enabled ? "on" : "off", reason, metadata };
  }
  if (flag.state === "DISABLED") return { reason: "DISABLED", metadata };
  const byDefault = (reason: Reason): Resolution =>
    typeof flag.defaultVariant === "string" && Object.hasOwn(flag.variants, flag.defaultVariant)
      ? { value: flag.variants[flag.defaultVariant], variant: flag.defaultVariant, reason, metadata }
      : { reason: "DEFAULT", metadata };
  if (!hasTargeting(flag.targeting)) return byDefault("STATIC");

  let result: unknown;
  try {
    const data: Data = { ...context, $flagd: { flagKey: key, timestamp: Math.floor((options.now ?? Date.now()) / 1000) } };
    result = run(flag.targeting, data, options.evaluators ?? {});
  } catch (error) {
    const message = error instanceof RuleError ? error.message : `the targeting rule failed: ${String(error)}`;
    return { reason: "ERROR", errorCode: "PARSE_ERROR", errorMessage: `flag ${key}: ${message}`, metadata };
  }
  if (result === null || result === undefined) return byDefault("DEFAULT");
  const variant = typeof result === "boolean" ? String(result) : result;
  if (typeof variant !== "string" || !Object.hasOwn(flag.variants, variant)) {
    return { reason: "ERROR", errorCode: "GENERAL", errorMessage: `flag ${key}: targeting chose ${JSON.stringify(result)}, which is not one of its variants`, metadata };
  }
  return { value: flag.variants[variant], variant, reason: "TARGETING_MATCH", metadata };
}
