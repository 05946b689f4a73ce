/**
 * How traffic is split between the version an update uploads (the candidate)
 * and the version that served before it (the stable one): the stack config
 * `rollout`, validated here, and the WorkersDeployment split it gives.
 * Shared by the Pulumi program and the release commands (promote, rollback).
 */

/** The stack config `kv-worker-stack:rollout`. */
export interface Rollout {
  /** Share of requests the candidate version takes, 0–100. 0: reachable only through a version override. */
  percent: number;
  /** The version that takes the rest; required below 100. */
  stableVersionId?: string | undefined;
}

export const DEFAULT_ROLLOUT: Rollout = { percent: 100 };

/** One entry of a deployment: a version and its share of traffic. */
export interface TrafficShare {
  versionId: string;
  percent: number;
}

/** A Cloudflare version id: a UUID. */
export const VERSION_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Validates a rollout as the stack file or Pulumi gives it. Throws the detail
 * and the key (relative to `rollout`) through `fail`.
 */
export function parseRollout(value: unknown, fail: (key: string, detail: string) => never): Rollout {
  if (value === undefined || value === null || value === "") return { ...DEFAULT_ROLLOUT };
  if (typeof value !== "object" || Array.isArray(value)) return fail("rollout", `must be a map {percent, stableVersionId?}, got ${JSON.stringify(value)}`);
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (key !== "percent" && key !== "stableVersionId") fail(`rollout.${key}`, "unknown key; the known keys are percent, stableVersionId");
  }
  const percent = raw.percent ?? DEFAULT_ROLLOUT.percent;
  if (typeof percent !== "number" || !Number.isInteger(percent) || percent < 0 || percent > 100) {
    fail("rollout.percent", `must be an integer from 0 to 100, got ${JSON.stringify(raw.percent)}`);
  }
  let stableVersionId: string | undefined;
  if (raw.stableVersionId !== undefined && raw.stableVersionId !== null && raw.stableVersionId !== "") {
    stableVersionId = typeof raw.stableVersionId === "string" ? raw.stableVersionId.trim().toLowerCase() : undefined;
    if (stableVersionId === undefined || !VERSION_ID_PATTERN.test(stableVersionId)) {
      fail("rollout.stableVersionId", `must be a Worker version id (a UUID), got ${JSON.stringify(raw.stableVersionId)}`);
    }
  }
  if ((percent as number) < 100 && stableVersionId === undefined) {
    fail(
      "rollout.stableVersionId",
      `is required when rollout.percent is ${String(percent)}: the other ${100 - (percent as number)} % needs a version to go to (find it with \`pulumi stack output activeVersionId\`)`,
    );
  }
  return { percent: percent as number, ...(stableVersionId ? { stableVersionId } : {}) };
}

/**
 * The deployment for a rollout: the candidate at `percent`, the stable
 * version at the rest, biggest share first. The candidate stays in the
 * deployment at 0 %, because a version override only reaches versions in the
 * active deployment. A stable version equal to the candidate (an update that
 * uploaded nothing new) collapses to one entry.
 */
export function trafficSplit(rollout: Rollout, candidateVersionId: string): TrafficShare[] {
  if (rollout.percent === 100 || rollout.stableVersionId === undefined || rollout.stableVersionId === candidateVersionId) {
    return [{ versionId: candidateVersionId, percent: 100 }];
  }
  const shares = [
    { versionId: candidateVersionId, percent: rollout.percent },
    { versionId: rollout.stableVersionId, percent: 100 - rollout.percent },
  ];
  // Stable sort: at 50/50 the candidate stays first and counts as the active version.
  return shares.sort((a, b) => b.percent - a.percent);
}

/** `a1b2c3d4… 90 % + e5f6a7b8… 10 %`: a split in one line. */
export const formatSplit = (shares: readonly TrafficShare[]) =>
  shares.map((share) => `${share.versionId} ${share.percent} %`).join(" + ");
