import { bucketOf, BUCKETS } from "./bucketing";
import type { Flag } from "./contract";

/** OpenFeature resolution reasons. */
export type Reason = "DISABLED" | "TARGETING_MATCH" | "SPLIT" | "STATIC" | "DEFAULT";

export interface Evaluation {
  enabled: boolean;
  reason: Reason;
}

/**
 * Resolves a flag for one caller. `enabled: false` wins over everything; an
 * allow-listed user is on; a percentage rollout needs a userId (a 10 % rollout
 * must not switch on for every anonymous caller); otherwise the flag is on.
 */
export function evaluateFlag(name: string, flag: Flag | undefined, userId?: string): Evaluation {
  if (!flag) return { enabled: false, reason: "DEFAULT" };
  if (!flag.enabled) return { enabled: false, reason: "DISABLED" };
  if (userId && flag.allowedUsers?.includes(userId)) return { enabled: true, reason: "TARGETING_MATCH" };
  if (flag.percentage === undefined) return { enabled: true, reason: "STATIC" };
  if (!userId) return { enabled: false, reason: "DEFAULT" };
  const bucket = bucketOf(name, userId);
  return { enabled: bucket < (flag.percentage * BUCKETS) / 100, reason: "SPLIT" };
}
