/**
 * Drift: what a refresh preview finds changed outside Pulumi (in the dashboard,
 * with wrangler), read from the engine's per-resource step events.
 */
import type { EngineEvent, StepEventMetadata } from "@pulumi/pulumi/automation";

/** Exit code for drift: distinct from a failure (1) and a missing tool (2), so a scheduled job can tell them apart. */
export const EXIT_DRIFT = 3;

/** How `--expect-no-changes` fails when the engine found changes (the CLI's own words). */
export const EXPECTED_NO_CHANGES = /no changes were expected/i;

export interface DriftedProperty {
  /** Property path as the engine names it (`title`, `bindings[2].text`). */
  path: string;
  old?: unknown;
  new?: unknown;
}

export interface DriftedResource {
  urn: string;
  type: string;
  /** The resource's logical name (the URN's last segment). */
  name: string;
  /** `update`: changed outside Pulumi; `delete`: gone outside Pulumi. */
  change: "update" | "delete";
  properties: DriftedProperty[];
}

/** Collects the step metadata of one refresh preview, one entry per resource (the latest event wins). */
export function driftCollector() {
  const steps = new Map<string, StepEventMetadata>();
  return {
    onEvent(event: EngineEvent) {
      const metadata = event.resOutputsEvent?.metadata ?? event.resourcePreEvent?.metadata;
      if (metadata) steps.set(metadata.urn, metadata);
    },
    drift: () => driftFromSteps([...steps.values()]),
  };
}

const isEqual = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const topLevelKey = (path: string) => path.split(/[.[]/, 1)[0]!;

/**
 * A refresh step reports the resource as Pulumi last saw it (`old`) and as the
 * provider reads it now (`new`); it is drift when those differ or `new` is gone.
 * The engine's own diff keys are used when it gives them, else the outputs are compared.
 */
export function driftFromSteps(steps: StepEventMetadata[]): DriftedResource[] {
  const drifted: DriftedResource[] = [];
  for (const step of steps) {
    // Providers and stacks have no cloud state to drift from.
    if (step.type.startsWith("pulumi:")) continue;
    const name = step.urn.slice(step.urn.lastIndexOf("::") + 2);
    const oldOutputs = step.old?.outputs ?? {};
    if (step.op === "delete" || (step.old && !step.new)) {
      drifted.push({ urn: step.urn, type: step.type, name, change: "delete", properties: [] });
      continue;
    }
    const newOutputs = step.new?.outputs ?? {};
    const engineKeys = [...Object.keys(step.detailedDiff ?? {}), ...(step.diffs ?? [])];
    const keys = engineKeys.length > 0
      ? [...new Set(engineKeys)]
      : [...new Set([...Object.keys(oldOutputs), ...Object.keys(newOutputs)])].filter((key) => !isEqual(oldOutputs[key], newOutputs[key]));
    if (keys.length === 0 && step.op !== "update" && step.op !== "replace") continue;
    drifted.push({
      urn: step.urn,
      type: step.type,
      name,
      change: "update",
      properties: keys.sort().map((path) => ({ path, old: oldOutputs[topLevelKey(path)], new: newOutputs[topLevelKey(path)] })),
    });
  }
  return drifted.sort((a, b) => a.urn.localeCompare(b.urn));
}
