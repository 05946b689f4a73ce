/**
 * Promotes the bundle a stack runs to another stack, in steps: only the exact
 * bytes that passed in `--from` may reach `--to`; the new version is uploaded
 * at 0 % and smoke-tested in place through a version override before it takes
 * any traffic; then traffic moves step by step, smoke-tested for `--hold`
 * seconds at each. Any failed check puts all traffic back on the stable
 * version at once and exits non-zero.
 *
 *   npm run promote -- --from dev --to prod [--steps 0,10,50,100] [--hold <seconds>] [--yes]
 */
import { parseArgs } from "node:util";
import { formatSplit, type Rollout, trafficSplit } from "../infra/rollout";
import type { Manifest } from "./build";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { readArtifact } from "./lib/delivery-artifact";
import { askToConfirm, canConfirm } from "./lib/delivery-prompt";
import {
  currentSplit,
  EXIT_MISSING_TOOL,
  formatChanges,
  openStack,
  PULUMI_MISSING_MESSAGE,
  pulumiCliVersion,
  type StackOps,
} from "./lib/pulumi-stack";
import { runSmoke, summarize, type SmokeOptions, type SmokeResult } from "./smoke";

export const DEFAULT_STEPS = [0, 10, 50, 100];
export const DEFAULT_HOLD_SECONDS = 60;
/** Pause between smoke runs while a step is held. */
export const HOLD_INTERVAL_MS = 10_000;

export interface PromotionDeps {
  from: StackOps;
  to: StackOps;
  /** The local build's manifest (dist/manifest.json), undefined when there is none. */
  readArtifact: () => Promise<Manifest | undefined>;
  /** Asked before the update unless `yes`. */
  confirm: (question: string) => Promise<boolean>;
  smoke: (options: Pick<SmokeOptions, "url" | "adminToken" | "expectSha256" | "versionOverride">) => Promise<SmokeResult[]>;
  /** Traffic steps in percent, ascending, ending at 100; the upload at 0 % always comes first. */
  steps: readonly number[];
  /** How long each step keeps being smoke-tested before the next. */
  holdSeconds: number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  yes: boolean;
  log: (line: string) => void;
}

/** Parses `--steps 0,10,50,100`: integers 0–100, ascending, ending at 100. */
export function parseSteps(text: string): number[] {
  const steps = text.split(",").map((part) => Number(part.trim()));
  const valid = steps.every((step, i) => Number.isInteger(step) && step >= 0 && step <= 100 && (i === 0 || step > steps[i - 1]!));
  if (!valid || steps.at(-1) !== 100) throw new CliError(`--steps ${text}: give ascending percentages from 0 to 100 ending at 100, e.g. 0,10,50,100`);
  return steps;
}

/** Runs one promotion; every refusal or failure is a CliError saying where the target's traffic is. */
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

  const { split: before } = await currentSplit(to);
  const previousRollout = await to.rollout();
  // The version taking the majority of traffic now is the one to fall back to.
  const stable = before[0]?.versionId;
  log(stable ? `${to.name} serves ${formatSplit(before)}; stable version ${stable}` : `${to.name} has no deployed version yet: its first release goes to 100 % at once`);
  // The first release has nothing to split with or fall back to.
  const first: Rollout = stable ? { percent: 0, stableVersionId: stable } : { percent: 100 };
  await to.setRollout(first);

  // Until the update starts, a refusal leaves the config as it was.
  try {
    log(`Previewing ${to.name} (new version at ${first.percent} %)…`);
    const planned = await to.preview();
    log(`Preview of ${to.name}: ${formatChanges(planned, "planned")}`);
    if (!deps.yes && !(await deps.confirm(`Promote sha256 ${deployed.slice(0, 12)}… to ${to.name}?`))) {
      throw new CliError(`promotion cancelled; ${to.name} was not changed`);
    }
  } catch (error) {
    await to.setRollout(previousRollout);
    throw error;
  }

  log(`Uploading the new version to ${to.name} at ${first.percent} %…`);
  const update = await to.up();
  log(`✓ ${to.name} updated (update ${update.version}): ${formatChanges(update.changes, "done")}`);
  const after = await to.outputs();
  const candidate = after.candidateVersionId;
  if (!after.url || !candidate || !after.workerName) throw new CliError(`stack "${to.name}" has no url, candidateVersionId or workerName output to smoke-test`);
  const url = after.url;
  const versionOverride = { workerName: after.workerName, versionId: candidate };

  /** Smoke-tests the new version through the override; returns the failed check names. */
  const check = async () => {
    const results = await deps.smoke({ url, adminToken: after.adminToken, expectSha256: deployed, versionOverride });
    return { failed: results.filter((r) => r.status === "fail").map((r) => `${r.name}: ${r.detail}`), counts: summarize(results) };
  };

  if (!stable || stable === candidate) {
    const { failed, counts } = await check();
    if (failed.length > 0) {
      throw new CliError(
        `${to.name} runs ${candidate} at 100 % and failed ${failed.length} smoke check(s): ${failed.join("; ")}. ` +
          (stable ? "It is the version that was already serving; nothing changed." : "This is its first release: there is no previous version to fall back to; fix forward."),
      );
    }
    log(`step 1/1: ${candidate} 100 %: smoke ${counts.passed} passed`);
    log(`✓ ${to.name} serves sha256 ${deployed} (version ${candidate}) at 100 %: ${url}`);
    return;
  }

  /** Puts every request back on the stable version; the new one stays reachable through the override. */
  const fallBack = async (percent: number, failed: string[]): Promise<never> => {
    for (const line of failed) log(`  ✗ ${line}`);
    log(`Smoke check failed at ${percent} %: putting all traffic back on ${stable}…`);
    try {
      await to.setRollout({ percent: 0, stableVersionId: stable });
      await to.upDeployment();
    } catch (error) {
      throw new CliError(
        `smoke check failed at ${percent} % and moving traffic back failed too (${error instanceof Error ? error.message : String(error)}); ` +
          `run: npm run rollback -- --stack ${to.name} --to ${stable} --yes`,
      );
    }
    throw new CliError(`${to.name}: new version ${candidate} failed ${failed.length} smoke check(s) at ${percent} %; all traffic is back on ${stable} (the new version stays at 0 %)`);
  };

  const steps = deps.steps.filter((step) => step > 0);
  const total = steps.length + 1;
  for (const [index, percent] of [0, ...steps].entries()) {
    const rollout = { percent, stableVersionId: stable };
    if (percent > 0) {
      await to.setRollout(rollout);
      const moved = await to.upDeployment();
      log(`  traffic moved (update ${moved.version})`);
    }
    const split = trafficSplit(rollout, candidate);
    // At 0 % one check; at every later step keep checking until the hold is over, the last check at its end.
    const holdUntil = deps.now() + (percent > 0 ? deps.holdSeconds * 1000 : 0);
    let runs = 0;
    let passed = 0;
    do {
      if (runs > 0) await deps.sleep(Math.min(HOLD_INTERVAL_MS, holdUntil - deps.now()));
      const { failed, counts } = await check();
      runs++;
      passed += counts.passed;
      if (failed.length > 0) await fallBack(percent, failed);
    } while (deps.now() < holdUntil);
    log(`step ${index + 1}/${total}: ${formatSplit(split)}: ${runs} smoke run(s), ${passed} checks passed${percent > 0 ? ` over ${deps.holdSeconds} s` : " (through the version override)"}`);
  }
  log(`✓ promoted sha256 ${deployed} from ${from.name} to ${to.name}: version ${candidate} at 100 % (${stable} stays the rollback target): ${url}`);
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: {
        from: { type: "string" },
        to: { type: "string" },
        steps: { type: "string", default: DEFAULT_STEPS.join(",") },
        hold: { type: "string", default: String(DEFAULT_HOLD_SECONDS) },
        yes: { type: "boolean", default: false },
      },
    }),
  );
  if (!values.from || !values.to) throw new CliError("usage: npm run promote -- --from <stack> --to <stack> [--steps 0,10,50,100] [--hold <seconds>] [--yes]");
  if (values.from === values.to) throw new CliError(`--from and --to are both "${values.from}"`);
  const steps = parseSteps(values.steps);
  const holdSeconds = Number(values.hold);
  if (!Number.isInteger(holdSeconds) || holdSeconds < 0) throw new CliError(`--hold ${values.hold}: give whole seconds, 0 or more`);
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
    steps,
    holdSeconds,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => Date.now(),
    yes: values.yes,
    log,
  });
}

if (isMain(import.meta.url)) runCommand("promote", main);
