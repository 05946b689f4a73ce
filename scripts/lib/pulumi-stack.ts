/**
 * The small interface the delivery commands (deploy, promote) drive a Pulumi
 * stack through, and its one implementation on the Automation API. Promotion
 * logic only sees `StackOps`, so its tests inject a fake of this interface
 * instead of faking the Pulumi CLI.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import * as v from "valibot";
import { ROOT } from "../build";
import { CliError } from "./cli";

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
}

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
  const run = { onOutput: log, onError: log, policyPacks: [POLICY_PACK_DIR] };
  const failed = (operation: string) => (error: unknown) => {
    if (error instanceof ConcurrentUpdateError) throw new CliError(`another update of stack "${stackName}" is in progress; wait for it and try again`);
    // The engine already printed why; its error repeats all of that output.
    throw new CliError(`pulumi ${operation} of stack "${stackName}" failed (the engine's output above says why)`);
  };
  return {
    name: stackName,
    preview: () => stack.preview({ ...run, diff: true }).then((result) => result.changeSummary, failed("preview")),
    up: () =>
      stack.up({ ...run, diff: true }).then(
        (result) => ({ changes: result.summary.resourceChanges ?? {}, version: result.summary.version }),
        failed("up"),
      ),
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
  };
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
