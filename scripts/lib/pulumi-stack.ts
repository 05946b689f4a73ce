/**
 * The small interface the delivery commands (deploy, promote, rollback) drive
 * a Pulumi stack through, and its one implementation on the Automation API.
 * Promotion and rollback logic only see `StackOps`, so their tests inject a
 * fake of this interface instead of faking the Pulumi CLI.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import * as v from "valibot";
import { parseRollout, type Rollout, type TrafficShare, trafficSplit } from "../../infra/rollout";
import { ConfigError, PROJECT } from "../../infra/stack-file";
import { NO_BUILD_ENV, ROOT } from "../build";
import { CliError } from "./cli";
import { type DriftedResource, driftCollector, EXIT_DRIFT, EXPECTED_NO_CHANGES } from "./stack-drift";

/** Resource operation → count, as the engine reports it (`same`, `create`, `update`, `replace`…). */
export type ChangeSummary = Partial<Record<string, number>>;

/** The stack outputs the delivery commands read; names are the ones infra/index.ts exports. */
const StackOutputs = v.object({
  environment: v.optional(v.string()),
  workerName: v.optional(v.string()),
  url: v.optional(v.string()),
  workersDevUrl: v.optional(v.string()),
  customDomainUrls: v.optional(v.array(v.string())),
  bundleSha256: v.optional(v.string()),
  activeVersionId: v.optional(v.string()),
  candidateVersionId: v.optional(v.string()),
  stableVersionId: v.optional(v.string()),
  deployment: v.optional(v.array(v.object({ versionId: v.string(), percent: v.number() }))),
  versionUrl: v.optional(v.string()),
  adminToken: v.optional(v.string()),
});
export type StackOutputs = v.InferOutput<typeof StackOutputs>;

/** One entry of `pulumi stack history`, newest first. */
export interface StackUpdate {
  version: number;
  kind: string;
  result: string;
  startTime: Date;
  /** The git commit the update ran from, when Pulumi recorded one. */
  commit?: string;
}

export interface StackOps {
  readonly name: string;
  preview(): Promise<ChangeSummary>;
  up(): Promise<{ changes: ChangeSummary; version: number }>;
  outputs(): Promise<StackOutputs>;
  history(): Promise<StackUpdate[]>;
  /** The stack config `rollout`, as the program reads it. */
  rollout(): Promise<Rollout>;
  /** Sets the stack config `rollout` (Pulumi writes it to Pulumi.<stack>.yaml) for the next update. */
  setRollout(rollout: Rollout): Promise<void>;
  /**
   * Updates the deployment alone (a targeted update): moves traffic between
   * versions already uploaded, in seconds, without building or uploading.
   */
  upDeployment(): Promise<{ changes: ChangeSummary; version: number }>;
  /** Refresh preview (changes nothing): the resources whose real state differs from Pulumi's. */
  refreshPreview(): Promise<DriftedResource[]>;
}

const ROLLOUT_KEY = `${PROJECT}:rollout`;
const DEPLOYMENT_TYPE = "cloudflare:index/workersDeployment:WorkersDeployment";
/** The stack's policy pack (policy/PulumiPolicy.yaml): every preview and up runs it, and a mandatory violation stops the update. */
export const POLICY_PACK_DIR = join(ROOT, "policy");

export const PULUMI_INSTALL_URL = "https://www.pulumi.com/docs/install/";
export const PULUMI_MISSING_MESSAGE = `the Pulumi CLI is not installed (no \`pulumi\` on PATH); install it from ${PULUMI_INSTALL_URL} and run this again`;
/** Exit code for "a tool this command needs is missing", distinct from a failed deployment (1). */
export const EXIT_MISSING_TOOL = 2;

/** The installed Pulumi CLI's version, or undefined when there is no `pulumi` on PATH. */
export async function pulumiCliVersion(): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)("pulumi", ["version"], { env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" } });
    return stdout.trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Selects an existing stack of the program at the repository root. The
 * engine's progress (stdout and stderr) streams to `log` while it runs.
 */
export async function openStack(stackName: string, log: (chunk: string) => void): Promise<StackOps> {
  // Loaded here so that a missing CLI is reported before this module's cost is paid.
  const { LocalWorkspace, StackNotFoundError, ConcurrentUpdateError } = await import("@pulumi/pulumi/automation");
  const stack = await LocalWorkspace.selectStack({ stackName, workDir: ROOT }).catch((error: unknown) => {
    if (error instanceof StackNotFoundError) {
      throw new CliError(`stack "${stackName}" does not exist in the current Pulumi backend; create it with \`pulumi stack init ${stackName}\` (its config is Pulumi.${stackName}.yaml)`);
    }
    throw error;
  });
  const stream = { onOutput: log, onError: log };
  // Previews and updates run the policy pack; a mandatory violation stops them.
  const run = { ...stream, policyPacks: [POLICY_PACK_DIR] };
  const failed = (operation: string) => (error: unknown) => {
    if (error instanceof ConcurrentUpdateError) throw new CliError(`another update of stack "${stackName}" is in progress; wait for it and try again`);
    // The engine already printed why; its error repeats all of that output.
    throw new CliError(`pulumi ${operation} of stack "${stackName}" failed (the engine's output above says why)`);
  };
  const update = (result: { summary: { resourceChanges?: ChangeSummary; version: number } }) => ({
    changes: result.summary.resourceChanges ?? {},
    version: result.summary.version,
  });
  return {
    name: stackName,
    preview: () => stack.preview({ ...run, diff: true }).then((result) => result.changeSummary, failed("preview")),
    up: () => stack.up({ ...run, diff: true }).then(update, failed("up")),
    rollout: async () => {
      const value = await stack.getConfig(ROLLOUT_KEY).then((config) => config.value, () => undefined);
      const fail = (key: string, detail: string): never => {
        throw new ConfigError(stackName, key, detail);
      };
      return parseRollout(value === undefined ? undefined : JSON.parse(value), fail);
    },
    setRollout: (rollout) => stack.setConfig(ROLLOUT_KEY, { value: JSON.stringify(rollout) }),
    upDeployment: async () => {
      const resources = (await stack.exportStack()).deployment?.resources as { urn: string; type: string }[] | undefined;
      const deployment = resources?.find((resource) => resource.type === DEPLOYMENT_TYPE);
      if (!deployment) throw new CliError(`stack "${stackName}" has no Worker deployment yet; run a full update first (npm run deploy -- --stack ${stackName})`);
      // The program still runs in a targeted update; it must not build (see infra/index.ts).
      process.env[NO_BUILD_ENV] = "1";
      try {
        return await stack.up({ ...run, target: [deployment.urn] }).then(update, failed("up of the deployment"));
      } finally {
        delete process.env[NO_BUILD_ENV];
      }
    },
    outputs: async () => {
      const raw = await stack.outputs();
      // An output the program left unset (workersDevUrl without workers.dev) may come back as null.
      const values = Object.fromEntries(Object.entries(raw).flatMap(([key, output]) => (output.value == null ? [] : [[key, output.value]])));
      const parsed = v.safeParse(StackOutputs, values);
      if (!parsed.success) throw new CliError(`stack "${stackName}" has unexpected outputs: ${v.summarize(parsed.issues)}`);
      return parsed.output;
    },
    history: async () =>
      (await stack.history()).map((update) => ({
        version: update.version,
        kind: update.kind,
        result: update.result,
        startTime: update.startTime,
        ...(update.environment?.["git.head"] ? { commit: update.environment["git.head"] } : {}),
      })),
    refreshPreview: async () => {
      const collector = driftCollector();
      // --expect-no-changes makes the engine fail on drift; what it found is in the events either way.
      const ran = await stack.previewRefresh({ ...stream, onEvent: collector.onEvent, expectNoChanges: true }).then(
        () => true,
        (error: unknown) => error,
      );
      const drift = collector.drift();
      if (ran === true || drift.length > 0) return drift;
      if (EXPECTED_NO_CHANGES.test(String(ran))) {
        throw new CliError(`stack "${stackName}" has drifted, but the engine named no resource; its output above shows the changes`, EXIT_DRIFT);
      }
      return failed("refresh --preview-only")(ran);
    },
  };
}

/**
 * What a stack's deployment is now, and the stable version on record. The
 * outputs are the record: the engine updates stack outputs in a targeted
 * update too (pulumi/pulumi#12834), and they live in the backend, while
 * `rollout` in a CI checkout's Pulumi.<stack>.yaml is thrown away with it.
 * The config is the fallback for a stack whose outputs predate them.
 */
export async function currentSplit(stack: StackOps): Promise<{ outputs: StackOutputs; split: TrafficShare[]; stableVersionId: string | undefined }> {
  const [outputs, rollout] = await Promise.all([stack.outputs(), stack.rollout()]);
  const split = outputs.deployment ?? (outputs.candidateVersionId ? trafficSplit(rollout, outputs.candidateVersionId) : []);
  return { outputs, split, stableVersionId: outputs.stableVersionId ?? rollout.stableVersionId };
}

const OPERATIONS: [op: string, planned: string, done: string][] = [
  ["create", "to create", "created"],
  ["update", "to update", "updated"],
  ["replace", "to replace", "replaced"],
  ["delete", "to delete", "deleted"],
  ["same", "unchanged", "unchanged"],
];

/** `1 to create, 2 to update, 5 unchanged` (or `1 created, …` once done): the non-zero counts in a stable order. */
export function formatChanges(changes: ChangeSummary, tense: "planned" | "done"): string {
  const parts: string[] = [];
  for (const [op, planned, done] of OPERATIONS) {
    if (changes[op]) parts.push(`${changes[op]} ${tense === "planned" ? planned : done}`);
  }
  for (const [op, count] of Object.entries(changes)) {
    if (count && !OPERATIONS.some(([known]) => known === op)) parts.push(`${count} ${op}`);
  }
  return parts.length > 0 ? parts.join(", ") : "no resources";
}
