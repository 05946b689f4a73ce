/**
 * The offline plan: runs the Pulumi program on Pulumi's mock engine with a
 * stack's config (no CLI, no credentials) and prints the resources it would
 * declare.
 *
 *   npm run plan -- --stack dev              table (default stack: dev)
 *   npm run plan -- --stack prod --json      the same as JSON
 *   npm run plan -- --stack prod --mermaid   a diagram GitHub renders
 *   npm run plan -- --diff dev prod          what differs between two stacks
 *   npm run plan -- --stack dev --update     rewrite infra/plans/dev.txt
 *   npm run plan -- --stack dev --root <dir> a checkout elsewhere (its Pulumi.yaml and stack files)
 *
 * Before the program, the plan runs the Pulumi CLI's config phase
 * (infra/cli-config.ts): a stack file `pulumi preview` would refuse (a
 * required key missing, a value of the wrong type, a secret in plain text) is
 * refused with the CLI's message.
 *
 * Every plan (not --update) also runs the policy pack's rules (policy/rules.ts)
 * over the recorded resources, prints each violation, and exits 1 on a
 * mandatory one.
 *
 * The committed snapshots in infra/plans/ show the bundle hash as
 * "<bundle sha256>", so Worker code changes do not touch them; the live plan
 * builds dist/ when stale and shows the real hash.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Bundle } from "../infra/components/worker-service";
import { type Crypter, applyProjectConfig, configSet, loadProject, readStackDocument, stackConfigOf, stackFilePath } from "../infra/cli-config";
import { type RecordOptions, type RecordedResource, type Recording, recordStack } from "../infra/plan/record";
import { diffRecordings, renderMermaid, renderTable, toJson } from "../infra/plan/render";
import { loadStackConfig } from "../infra/stack-file";
import { policyContext } from "../policy/context";
import { type Finding, RULES, type StackResource, evaluatePolicies, formatFinding } from "../policy/rules";
import { BUNDLE_PATH, ROOT, ensureBuilt } from "./build";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";

export const PLANS_DIR = join(ROOT, "infra/plans");
export const snapshotPath = (stack: string) => join(PLANS_DIR, `${stack}.txt`);
/** The bundle the snapshots are taken with: the hash is a placeholder, the rest is what a build gives. */
export const SNAPSHOT_BUNDLE: Bundle = { contentFile: "dist/worker.js", sha256: "<bundle sha256>", mainModule: "worker.js" };
/**
 * Plans never see a real secret: every `secure:` value of the stack file
 * reaches the program as this stand-in (it only ever shows as [secret]), and
 * a stack file without the admin token (every fresh clone, and CI) plans as if
 * `pulumi config set --secret adminToken …` had been run.
 */
const PLAN_SECRET = "plan-secret";
const STAND_IN: Crypter = { encrypt: () => "plan-stand-in", decrypt: () => PLAN_SECRET };

/**
 * The Pulumi CLI's config phase (infra/cli-config.ts) on the stack's files,
 * so a plan refuses what `pulumi preview` refuses, in the same words; then the
 * program's config for the mock engine, project keys without their prefix.
 */
export function planConfig(stack: string, root = ROOT): Pick<RecordOptions, "config" | "secrets"> {
  const project = loadProject(root);
  let document = readStackDocument(stackFilePath(root, project, stack));
  if (!Object.hasOwn((document.config ?? {}) as object, `${project.name}:adminToken`)) {
    document = configSet(project, document, { key: "adminToken", value: PLAN_SECRET, secret: true }, STAND_IN);
  }
  const { values, secretKeys } = applyProjectConfig(stack, project, stackConfigOf(project, document).config, STAND_IN);
  const config: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (!key.startsWith(`${project.name}:`)) continue; // provider settings; the mock engine has no providers
    (secretKeys.includes(key) ? secrets : config)[key.slice(project.name.length + 1)] = value;
  }
  return { config, secrets };
}

/** Runs the CLI's config phase and the program's own checks on the stack's files, then records the program on the mock engine. */
export async function planStack(stack: string, bundle?: Bundle, root = ROOT): Promise<Recording> {
  const config = planConfig(stack, root);
  loadStackConfig(stack, { root });
  return recordStack(stack, { ...config, ...(bundle ? { bundle } : {}) });
}

const toStackResource = (r: RecordedResource): StackResource => ({
  type: r.type,
  name: r.name,
  id: r.id,
  inputs: r.inputs,
  protect: r.protect,
  retainOnDelete: r.retainOnDelete,
});

/** The policy pack's rules over a recording: what `pulumi preview --policy-pack policy` would report. */
export const checkPolicies = (recording: Recording, root = ROOT, today = new Date()): Finding[] =>
  evaluatePolicies(recording.resources.filter((r) => r.custom).map(toStackResource), policyContext(recording.stack, { root, today }));

/** Prints each finding; a mandatory one fails the command. */
function reportPolicies(recordings: Recording[], root: string, log: (line: string) => void): void {
  let mandatory = 0;
  for (const recording of recordings) {
    const findings = checkPolicies(recording, root);
    for (const finding of findings) log(`policy ${recording.stack}: ${formatFinding(finding)}`);
    mandatory += findings.filter((f) => f.enforcementLevel === "mandatory").length;
    if (findings.length === 0) log(`policies for ${recording.stack}: all ${RULES.length} rules pass`);
  }
  if (mandatory > 0) throw new CliError(`${mandatory} mandatory policy violation${mandatory === 1 ? "" : "s"} (above); fix the stack before it is previewed or deployed`);
}

export const renderSnapshot = async (stack: string) => renderTable(await planStack(stack, SNAPSHOT_BUNDLE));

async function liveBundle(log: (line: string) => void): Promise<Bundle> {
  const manifest = await ensureBuilt(log);
  return { contentFile: "dist/worker.js", sha256: manifest.sha256, mainModule: manifest.mainModule };
}

async function main() {
  const { values, positionals } = parseFlags(() =>
    parseArgs({
      options: {
        stack: { type: "string", default: "dev" },
        json: { type: "boolean", default: false },
        mermaid: { type: "boolean", default: false },
        diff: { type: "boolean", default: false },
        update: { type: "boolean", default: false },
        root: { type: "string", default: ROOT },
      },
      allowPositionals: true,
    }),
  );
  // Progress goes to stderr so that --json and --mermaid output can be piped.
  const log = (line: string) => console.error(line);

  if (values.diff) {
    const [a = "dev", b = "prod"] = positionals;
    log(`planning stacks ${a} and ${b} on the mock engine…`);
    const bundle = await liveBundle(log);
    const left = await planStack(a, bundle, values.root);
    const right = await planStack(b, bundle, values.root);
    process.stdout.write(diffRecordings(left, right));
    reportPolicies([left, right], values.root, log);
    return;
  }
  const stack = values.stack;
  if (values.update) {
    const path = snapshotPath(stack);
    writeFileSync(path, await renderSnapshot(stack));
    log(`wrote ${path.slice(ROOT.length + 1)}; review it with git diff and commit it with your change`);
    return;
  }
  log(`planning stack ${stack} on the mock engine (no credentials, nothing deployed)…`);
  const recording = await planStack(stack, await liveBundle(log), values.root);
  if (values.json) process.stdout.write(toJson(recording));
  else if (values.mermaid) process.stdout.write(renderMermaid(recording));
  else process.stdout.write(renderTable(recording));
  log(`plan for ${stack}: ${recording.resources.filter((r) => r.custom).length} resources, bundle ${BUNDLE_PATH.slice(ROOT.length + 1)}`);
  reportPolicies([recording], values.root, log);
}

if (isMain(import.meta.url)) runCommand("plan", main);
