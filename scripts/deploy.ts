/**
 * Previews or deploys one stack with the Pulumi Automation API, streaming the
 * engine's progress, then sums up what changed and where the Worker answers.
 * It ships the bundle already in dist/ and never rebuilds it: CI builds once
 * and every stack gets the same bytes.
 *
 *   npm run deploy -- --stack <name> [--preview] [--yes]
 */
import { parseArgs } from "node:util";
import { formatSplit } from "../infra/rollout";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { requireArtifact } from "./lib/delivery-artifact";
import { askToConfirm, canConfirm } from "./lib/delivery-prompt";
import { EXIT_MISSING_TOOL, formatChanges, openStack, PULUMI_MISSING_MESSAGE, pulumiCliVersion } from "./lib/pulumi-stack";

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: {
        stack: { type: "string" },
        preview: { type: "boolean", default: false },
        yes: { type: "boolean", default: false },
      },
    }),
  );
  const stackName = values.stack;
  if (!stackName) throw new CliError("usage: npm run deploy -- --stack <name> [--preview] [--yes]");
  const cli = await pulumiCliVersion();
  if (!cli) throw new CliError(PULUMI_MISSING_MESSAGE, EXIT_MISSING_TOOL);
  if (!values.preview && !values.yes && !canConfirm()) {
    throw new CliError(`refusing to update ${stackName} without confirmation: no terminal to ask on; pass --yes (or --preview to only look)`);
  }

  const manifest = await requireArtifact();
  console.log(`Pulumi ${cli}; bundle dist/${manifest.mainModule} sha256 ${manifest.sha256}`);
  const stack = await openStack(stackName, (chunk) => process.stdout.write(chunk));
  const started = performance.now();

  // Without --yes the preview is what the user says yes to; with it, `up` shows its own plan as it goes.
  if (values.preview || !values.yes) {
    console.log(`Previewing ${stackName}…`);
    const planned = await stack.preview();
    console.log(`\nPreview of ${stackName}: ${formatChanges(planned, "planned")}`);
    if (values.preview) return;
    if (!(await askToConfirm(`Deploy these changes to ${stackName}?`))) throw new CliError(`deployment cancelled; ${stackName} was not changed`);
  }

  console.log(`Deploying ${stackName}…`);
  const { changes, version } = await stack.up();
  const outputs = await stack.outputs();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const rows: [string, string | undefined][] = [
    ["changes", formatChanges(changes, "done")],
    ["url", outputs.url],
    ["workers.dev", outputs.workersDevUrl],
    ["domains", outputs.customDomainUrls?.length ? outputs.customDomainUrls.join(", ") : undefined],
    ["bundle", outputs.bundleSha256 && `sha256 ${outputs.bundleSha256}`],
    ["version", outputs.candidateVersionId],
    ["traffic", outputs.deployment?.length ? formatSplit(outputs.deployment) : undefined],
  ];
  console.log(`\nDeployed ${stackName} (update ${version}) in ${seconds} s`);
  for (const [label, value] of rows) if (value) console.log(`  ${label.padEnd(12)}${value}`);
  if (outputs.bundleSha256 !== manifest.sha256) {
    throw new CliError(`${stackName} reports bundle sha256 ${outputs.bundleSha256 ?? "(none)"}, but dist/ holds ${manifest.sha256}: the program did not deploy the verified build`);
  }
}

if (isMain(import.meta.url)) runCommand("deploy", main);
