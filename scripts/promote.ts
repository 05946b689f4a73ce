/**
 * Promotes the bundle a stack runs to another stack: only the exact bytes
 * that passed in `--from` may reach `--to`, and a failed smoke check after the
 * update ends with the steps to roll back.
 *
 *   npm run promote -- --from dev --to prod [--yes]
 */
import { parseArgs } from "node:util";
import type { Manifest } from "./build";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { readArtifact } from "./lib/delivery-artifact";
import { askToConfirm, canConfirm } from "./lib/delivery-prompt";
import {
  EXIT_MISSING_TOOL,
  formatChanges,
  openStack,
  PULUMI_MISSING_MESSAGE,
  pulumiCliVersion,
  type StackOps,
  type StackUpdate,
} from "./lib/pulumi-stack";
import { runSmoke, type SmokeOptions, type SmokeResult } from "./smoke";

export interface PromotionDeps {
  from: StackOps;
  to: StackOps;
  /** The local build's manifest (dist/manifest.json), undefined when there is none. */
  readArtifact: () => Promise<Manifest | undefined>;
  /** Asked before the update unless `yes`. */
  confirm: (question: string) => Promise<boolean>;
  smoke: (options: Pick<SmokeOptions, "url" | "adminToken" | "expectSha256">) => Promise<SmokeResult[]>;
  yes: boolean;
  log: (line: string) => void;
}

/** Runs one promotion; every refusal or failure is a CliError saying what happened to the target. */
export async function runPromotion(deps: PromotionDeps): Promise<void> {
  const { from, to, log } = deps;

  log(`Reading the bundle deployed to ${from.name}…`);
  const deployed = (await from.outputs()).bundleSha256;
  if (!deployed) throw new CliError(`stack "${from.name}" has no bundleSha256 output: deploy it first (npm run deploy -- --stack ${from.name})`);
  const local = await deps.readArtifact();
  if (local?.sha256 !== deployed) {
    throw new CliError(
      [
        `refusing to promote: the local build is not the bundle ${from.name} runs`,
        `  ${from.name} runs   sha256 ${deployed}`,
        `  dist/ holds  ${local ? `sha256 ${local.sha256}` : "no build (dist/manifest.json is missing)"}`,
        `Download the dist artifact of the run that deployed ${from.name}, or \`npm run build\` from the commit it was built from.`,
      ].join("\n"),
    );
  }
  log(`✓ dist/ holds the bundle ${from.name} runs: sha256 ${deployed}`);

  log(`Previewing ${to.name}…`);
  const planned = await to.preview();
  log(`Preview of ${to.name}: ${formatChanges(planned, "planned")}`);
  if (!deps.yes && !(await deps.confirm(`Promote sha256 ${deployed.slice(0, 12)}… to ${to.name}?`))) {
    throw new CliError(`promotion cancelled; ${to.name} was not changed`);
  }

  log(`Updating ${to.name}…`);
  const update = await to.up();
  log(`✓ ${to.name} updated (update ${update.version}): ${formatChanges(update.changes, "done")}`);

  const outputs = await to.outputs();
  if (!outputs.url) throw new CliError(`stack "${to.name}" has no url output to smoke-test`);
  log(`Smoke-testing ${outputs.url}…`);
  const results = await deps.smoke({ url: outputs.url, adminToken: outputs.adminToken, expectSha256: deployed });
  const failed = results.filter((result) => result.status === "fail");
  if (failed.length > 0) {
    const history = await to.history().catch(() => undefined);
    for (const line of rollbackSteps(to.name, update.version, history, outputs.url)) log(line);
    throw new CliError(`${to.name} now runs sha256 ${deployed} and failed ${failed.length} smoke check(s); roll back as shown above`);
  }
  log(`✓ promoted sha256 ${deployed} from ${from.name} to ${to.name}: ${outputs.url}`);
}

/** What to type to put the target back on its last good release. */
export function rollbackSteps(stack: string, failedVersion: number, history: StackUpdate[] | undefined, url: string): string[] {
  const previous = history?.find((u) => u.kind === "update" && u.result === "succeeded" && u.version < failedVersion);
  const commit = previous?.commit ?? "<commit of the last good release>";
  const lines = [
    "",
    `Roll back ${stack}:`,
    `  1. Find the last good update:  pulumi stack history --stack ${stack}`,
  ];
  if (history && !previous) {
    lines.push(`     (${stack} has no successful update before update ${failedVersion}: there is nothing to roll back to; fix forward)`);
  } else if (previous) {
    lines.push(`     (update ${previous.version}${previous.commit ? ` from commit ${previous.commit}` : ""}, ${previous.startTime.toISOString()}, is the last one that succeeded)`);
  }
  lines.push(
    "  2. Re-deploy that release from its commit (the build is deterministic: it gives back the same bundle):",
    `       git checkout ${commit} && npm ci && npm run build && npm run deploy -- --stack ${stack} --yes`,
    "     In CI: open the Deploy workflow run of that commit and choose \"Re-run all jobs\".",
    `  3. Check it:  npm run smoke -- --url ${url} (ADMIN_TOKEN from \`pulumi stack output adminToken --show-secrets --stack ${stack}\`)`,
    `  \`pulumi stack export --stack ${stack} --version <N>\` shows what update N deployed; importing it only rewrites Pulumi's state, not the running Worker, so it is not a rollback.`,
    "",
  );
  return lines;
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: { from: { type: "string" }, to: { type: "string" }, yes: { type: "boolean", default: false } },
    }),
  );
  if (!values.from || !values.to) throw new CliError("usage: npm run promote -- --from <stack> --to <stack> [--yes]");
  if (values.from === values.to) throw new CliError(`--from and --to are both "${values.from}"`);
  if (!(await pulumiCliVersion())) throw new CliError(PULUMI_MISSING_MESSAGE, EXIT_MISSING_TOOL);
  if (!values.yes && !canConfirm()) throw new CliError(`refusing to update ${values.to} without confirmation: no terminal to ask on; pass --yes`);
  const log = (line: string) => console.log(line);
  const engine = (chunk: string) => process.stdout.write(chunk);
  await runPromotion({
    from: await openStack(values.from, engine),
    to: await openStack(values.to, engine),
    readArtifact,
    confirm: askToConfirm,
    smoke: (options) => runSmoke({ ...options, log }),
    yes: values.yes,
    log,
  });
}

if (isMain(import.meta.url)) runCommand("promote", main);
