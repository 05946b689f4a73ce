import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "../build";

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
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
const workflows = Object.fromEntries(
  await Promise.all(files.map(async (name) => [name, parse(await readFile(join(WORKFLOWS, name), "utf8")) as Workflow] as const)),
);
const steps = Object.values(workflows).flatMap((workflow) => Object.values(workflow.jobs).flatMap((job) => job.steps));
const scripts = (JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

describe("GitHub workflows", () => {
  it("are the PR and deploy workflows, and parse as YAML", () => {
    expect(files.sort()).toEqual(["deploy.yml", "pr.yml"]);
    expect(Object.keys(workflows["pr.yml"]!.on)).toEqual(["pull_request"]);
    expect(workflows["deploy.yml"]!.on).toEqual({ push: { branches: ["main"] } });
  });

  it("only call npm scripts that package.json declares", () => {
    const called = steps.flatMap((step) => [...(step.run ?? "").matchAll(/npm run (?:--silent )?([\w:-]+)/g)].map((match) => match[1]!));
    expect(called).toEqual(expect.arrayContaining(["typecheck", "plan", "build", "deploy", "smoke", "promote"]));
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
    expect(jobs.prod!.steps.map((step) => step.run)).toContain("npm run promote -- --from dev --to prod --yes");
  });
});
