/**
 * Puts 100 % of a stack's traffic back on its previous stable version (or the
 * version given) in seconds: a targeted update of the deployment alone, no
 * build, no upload. The version that was serving stays in the deployment at
 * 0 %, still reachable through a version override for debugging.
 *
 *   npm run rollback -- --stack <name> [--to <versionId>] [--yes]
 */
import { parseArgs } from "node:util";
import { formatSplit, trafficSplit, VERSION_ID_PATTERN } from "../infra/rollout";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { askToConfirm, canConfirm } from "./lib/delivery-prompt";
import { currentSplit, EXIT_MISSING_TOOL, openStack, PULUMI_MISSING_MESSAGE, pulumiCliVersion, type StackOps } from "./lib/pulumi-stack";

export interface RollbackDeps {
  stack: StackOps;
  /** The version to put at 100 %; by default the stable version of the last promotion. */
  to: string | undefined;
  confirm: (question: string) => Promise<boolean>;
  yes: boolean;
  log: (line: string) => void;
}

/** Where version ids come from, printed with every rollback. */
export const findVersionsHint = (stack: string) =>
  `Version ids: \`pulumi stack output deployment --stack ${stack}\` (the current split), ` +
  `\`pulumi stack history --stack ${stack}\` with \`pulumi stack export --version <N> --stack ${stack}\` (the versions of earlier updates); ` +
  "Cloudflare keeps the 100 most recent versions of a Worker.";

export async function runRollback(deps: RollbackDeps): Promise<void> {
  const { stack, log } = deps;
  const { outputs, split: before, stableVersionId } = await currentSplit(stack);
  if (before.length === 0) throw new CliError(`stack "${stack.name}" has no deployment output: nothing is deployed to roll back. ${findVersionsHint(stack.name)}`);
  log(`${stack.name} now:    ${formatSplit(before)}`);

  if (deps.to !== undefined && !VERSION_ID_PATTERN.test(deps.to)) throw new CliError(`--to ${deps.to} is not a Worker version id (a UUID). ${findVersionsHint(stack.name)}`);
  // The stable version the last promotion kept (the config remembers it, also after 100 %) is the previous release.
  const target = deps.to ?? stableVersionId;
  if (!target) throw new CliError(`${stack.name} has no previous stable version on record; pass --to <versionId>. ${findVersionsHint(stack.name)}`);
  if (before.length === 1 && before[0]!.versionId === target) {
    log(`✓ ${stack.name} already sends 100 % to ${target}; nothing to do`);
    return;
  }

  const next = { percent: 0, stableVersionId: target };
  const after = outputs.candidateVersionId ? trafficSplit(next, outputs.candidateVersionId) : [{ versionId: target, percent: 100 }];
  log(`${stack.name} after:  ${formatSplit(after)}`);
  if (!deps.yes && !(await deps.confirm(`Move all of ${stack.name}'s traffic to ${target}?`))) throw new CliError(`rollback cancelled; ${stack.name} was not changed`);

  await stack.setRollout(next);
  try {
    await stack.upDeployment();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError(
      `${message}. If Cloudflare refused because secrets changed (error 10220), ${target} predates an ADMIN_TOKEN rotation: ` +
        "rolling back would bring the old token back, so it is refused (see docs/releases.md).",
    );
  }
  log(`✓ rolled back ${stack.name}: ${formatSplit(after)}`);
  log(findVersionsHint(stack.name));
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({ options: { stack: { type: "string" }, to: { type: "string" }, yes: { type: "boolean", default: false } } }),
  );
  if (!values.stack) throw new CliError("usage: npm run rollback -- --stack <name> [--to <versionId>] [--yes]");
  if (!(await pulumiCliVersion())) throw new CliError(PULUMI_MISSING_MESSAGE, EXIT_MISSING_TOOL);
  if (!values.yes && !canConfirm()) throw new CliError(`refusing to change ${values.stack} without confirmation: no terminal to ask on; pass --yes`);
  await runRollback({
    stack: await openStack(values.stack, (chunk) => process.stdout.write(chunk)),
    to: values.to?.toLowerCase(),
    confirm: askToConfirm,
    yes: values.yes,
    log: (line) => console.log(line),
  });
}

if (isMain(import.meta.url)) runCommand("rollback", main);
