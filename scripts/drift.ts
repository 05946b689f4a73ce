/**
 * Drift detection: a refresh preview of one stack through the Automation API
 * (`pulumi refresh --preview-only --expect-no-changes`; nothing is written to
 * the state or to Cloudflare), then every resource changed outside Pulumi
 * with the properties that differ.
 *
 *   npm run drift -- --stack <name> [--report <file>]
 *
 * Exit codes: 0 no drift, 3 drift, 2 no Pulumi CLI, 1 the refresh failed.
 */
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { EXIT_MISSING_TOOL, openStack, PULUMI_MISSING_MESSAGE, pulumiCliVersion, type StackOps } from "./lib/pulumi-stack";
import { type DriftedProperty, type DriftedResource, EXIT_DRIFT } from "./lib/stack-drift";

const MAX_VALUE_CHARS = 120;
const show = (value: unknown) => {
  const text = value === undefined ? "(unset)" : JSON.stringify(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
};
const describeProperty = (property: DriftedProperty) => `${property.path}: ${show(property.old)} → ${show(property.new)}`;

/** One line per drifted resource, then one per property that differs. */
export function formatDrift(drift: DriftedResource[]): string[] {
  return drift.flatMap((resource) => [
    resource.change === "delete"
      ? `- ${resource.name} (${resource.type}): deleted outside Pulumi`
      : `~ ${resource.name} (${resource.type}): changed outside Pulumi`,
    ...resource.properties.map((property) => `    ${describeProperty(property)}`),
  ]);
}

/** The Markdown the drift workflow puts in the job summary and in the stack's `drift` issue. */
export function driftReport(stackName: string, drift: DriftedResource[]): string {
  if (drift.length === 0) return `### Drift: \`${stackName}\`\n\nNo drift: every resource matches Pulumi's state.\n`;
  const rows = drift.flatMap((resource) =>
    (resource.properties.length > 0 ? resource.properties : [undefined]).map(
      (property) =>
        `| \`${resource.name}\` | \`${resource.type}\` | ${resource.change === "delete" ? "deleted" : "changed"} | ${property ? `\`${property.path}\`: \`${show(property.old)}\` → \`${show(property.new)}\``.replaceAll("|", "\\|") : ""} |`,
    ),
  );
  return [
    `### Drift: \`${stackName}\``,
    "",
    `${drift.length} resource(s) differ from Pulumi's state (changed in the dashboard or with wrangler, not by \`pulumi up\`).`,
    "",
    "| Resource | Type | Change | Property: state → real |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
    `Put it back with \`npm run deploy -- --stack ${stackName}\`, or keep the real values: change the program or \`Pulumi.${stackName}.yaml\` to match, or \`pulumi refresh --stack ${stackName}\` to adopt them into the state.`,
    "",
  ].join("\n");
}

export interface DriftDeps {
  /** The Pulumi CLI's version, undefined when there is none. */
  cliVersion: () => Promise<string | undefined>;
  open: (stackName: string) => Promise<Pick<StackOps, "name" | "refreshPreview">>;
  /** Where the Markdown report goes (--report), if anywhere. */
  writeReport?: (markdown: string) => Promise<void>;
  log: (line: string) => void;
}

/**
 * Refresh-previews the stack and prints what drifted. Resolves when there is
 * none; throws a CliError with EXIT_DRIFT when there is, EXIT_MISSING_TOOL without a CLI.
 */
export async function runDrift(stackName: string, deps: DriftDeps): Promise<void> {
  const { log } = deps;
  const cli = await deps.cliVersion();
  if (!cli) throw new CliError(PULUMI_MISSING_MESSAGE, EXIT_MISSING_TOOL);
  log(`Pulumi ${cli}; refresh preview of ${stackName} (changes nothing)…`);
  const stack = await deps.open(stackName);
  const drift = await stack.refreshPreview();
  await deps.writeReport?.(driftReport(stackName, drift));
  if (drift.length === 0) {
    log(`\nNo drift in ${stackName}: every resource matches Pulumi's state.`);
    return;
  }
  log(`\nDrift in ${stackName}: ${drift.length} resource(s) differ from Pulumi's state`);
  for (const line of formatDrift(drift)) log(line);
  throw new CliError(`${stackName} has drifted: ${drift.length} resource(s) changed outside Pulumi`, EXIT_DRIFT);
}

async function main(): Promise<void> {
  const { values } = parseFlags(() => parseArgs({ options: { stack: { type: "string" }, report: { type: "string" } } }));
  const stackName = values.stack;
  if (!stackName) throw new CliError("usage: npm run drift -- --stack <name> [--report <file>]");
  const report = values.report;
  await runDrift(stackName, {
    cliVersion: pulumiCliVersion,
    open: (name) => openStack(name, (chunk) => process.stdout.write(chunk)),
    ...(report ? { writeReport: (markdown: string) => writeFile(report, markdown) } : {}),
    log: (line) => console.log(line),
  });
}

if (isMain(import.meta.url)) runCommand("drift", main);
