/**
 * Starts the Pulumi program as `pulumi preview` does, with the test playing
 * the engine (./engine). First comes what the CLI does before any program
 * runs (`configPhase`, infra/cli-config.ts): the project's defaults are
 * applied and the stack's config validated, and a stack the CLI refuses never
 * reaches the program. The Node.js language host of the Pulumi CLI
 * (sdk/nodejs/cmd/pulumi-language-nodejs/main.go in pulumi/pulumi, read at
 * commit 1b59498) spawns `node <nodeargs> @pulumi/pulumi/cmd/run …` with the
 * config in environment variables; this file does the same, step by step,
 * citing the function each step comes from. The CLI itself cannot run here;
 * everything after the spawn is Pulumi's own runtime: cmd/run (run.ts) changes
 * into `--pwd`, finds package.json upwards from the program directory, imports
 * its `main` and runs the default export inside the stack resource.
 */
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { ROOT } from "../../../worker/build";
import {
  BASE64_CRYPTER,
  type ConfigPhase,
  applyProjectConfig,
  configSet,
  readStackDocument,
  loadProject,
  stackConfigOf,
  stackFilePath,
} from "../../cli-config";
import { type EngineRecord, startEngine } from "./engine";

/** `pulumi config set [--secret] <key> <value>`, key without the project prefix. */
export interface ConfigSetCommand {
  key: string;
  value: string;
  secret?: boolean;
}

export interface RunOptions {
  /** `pulumi config set` commands run on the stack file first, in order (the first-deployment walkthrough in docs/deploy.md). */
  commands?: ConfigSetCommand[];
  /** Then `pulumi config set <key> <value>` for each entry. */
  config?: Record<string, string>;
  /** Then `pulumi config set --secret <key> <value>` for each entry. */
  secrets?: Record<string, string>;
  /** The stack file's content in place of Pulumi.<stack>.yaml, as YAML parses it. */
  stackDocument?: Record<string, unknown>;
  /** The project root (where Pulumi.yaml is); the repository by default. */
  root?: string;
  /** Fails the run when the program has not exited by then. */
  timeoutMs?: number;
}

export interface ProgramRun extends EngineRecord {
  stack: string;
  /** What the CLI's config phase warned about before starting the program. */
  configWarnings: string[];
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** The node arguments and working directory, as the language host would spawn them. */
  argv: string[];
  /** The program's directory, where the language host and every provider plugin run. */
  pwd: string;
}

/** The organization the CLI reports for a self-managed (diy) backend. */
const ORGANIZATION = "organization";

/**
 * What the CLI does before it starts the program (infra/cli-config.ts): load
 * Pulumi.yaml and the stack file, run the given `pulumi config set` commands
 * on the file, apply the project's defaults and validate. Throws the CLI's
 * CliConfigError when it would refuse the stack. Secure values are written
 * and read with Pulumi's test crypter (base64) in place of the stack's
 * secrets provider.
 */
export function configPhase(stack: string, options: RunOptions = {}): ConfigPhase {
  const root = options.root ?? ROOT;
  const project = loadProject(root);
  let doc = options.stackDocument ?? readStackDocument(stackFilePath(root, project, stack));
  const commands = [
    ...(options.commands ?? []),
    ...Object.entries(options.config ?? {}).map(([key, value]) => ({ key, value })),
    ...Object.entries(options.secrets ?? {}).map(([key, value]) => ({ key, value, secret: true })),
  ];
  for (const command of commands) doc = configSet(project, doc, command, BASE64_CRYPTER);
  const { config, warnings } = stackConfigOf(project, doc);
  return { project, config: applyProjectConfig(stack, project, config, BASE64_CRYPTER), warnings };
}

export async function runProgram(stack: string, options: RunOptions = {}): Promise<ProgramRun> {
  const root = options.root ?? ROOT;
  // Before anything starts: a stack the CLI refuses never reaches the program.
  const { project, config, warnings } = configPhase(stack, options);
  const { pwd, main } = getPwdMain(root, project.main);
  const runtimeOptions = parseOptions(typeof project.runtime === "string" ? {} : (project.runtime.options ?? {}));
  const secretValues = config.secretKeys.map((key) => config.values[key]!).filter((value) => value !== "");
  // `defaultParallel` in pkg/cmd/pulumi/operations/up.go: GOMAXPROCS * 4 when --parallel is not given.
  const parallel = availableParallelism() * 4;
  const dryRun = true;

  const engine = await startEngine({
    project: project.name,
    stack,
    organization: ORGANIZATION,
    dryRun,
    parallel,
    secretValues,
  });
  try {
    // `Run`: locateModule resolves "@pulumi/pulumi/cmd/run" from the program directory.
    const runPath = createRequire(join(pwd, "noop.js")).resolve("@pulumi/pulumi/cmd/run");
    // `constructArguments`. The real host puts its own monitor proxy (and
    // pipes for synchronous invokes, `--sync`) in between; the program makes
    // no synchronous invokes, and maybeAppendArg leaves out empty values.
    const args = [runPath, "--monitor", engine.address, "--engine", engine.address];
    args.push("--organization", ORGANIZATION, "--project", project.name, "--root-directory", root, "--stack", stack, "--pwd", pwd);
    if (dryRun) args.push("--dry-run");
    args.push("--parallel", String(parallel), main);

    const env: NodeJS.ProcessEnv = Object.fromEntries(
      // Settings a Pulumi runtime in this process may have left behind; the CLI's environment has none.
      Object.entries(process.env).filter(([key]) => !key.startsWith("PULUMI_NODEJS_") && !key.startsWith("PULUMI_CONFIG")),
    );
    // `execRuntime`: config and secret keys as JSON in the environment.
    // `constructConfig` turns `<namespace>:<key>` into `<namespace>:config:<key>`;
    // `constructConfigSecretKeys` passes the keys on as the engine gives them,
    // `<namespace>:<key>` (`langhost.Run` in sdk/go/common/resource/plugin/langruntime_plugin.go).
    env.PULUMI_CONFIG = JSON.stringify(
      Object.fromEntries(Object.entries(config.values).map(([key, value]) => [key.replace(":", ":config:"), value])),
    );
    env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(config.secretKeys);
    if (runtimeOptions.typescript) env.PULUMI_NODEJS_TYPESCRIPT = "true";
    if (runtimeOptions.tsconfig) env.PULUMI_NODEJS_TSCONFIG_PATH = runtimeOptions.tsconfig;
    // `execRuntime`: `node`, then the runtime's nodeargs (shlex-split), then
    // the arguments. No cmd.Dir: node inherits the language host's working
    // directory, which the engine starts it in (`NewLanguageRuntime(host,
    // ctx, runtime, ctx.Pwd)` in pkg/host/host.go) — the program directory.
    const argv = [...splitArgs(runtimeOptions.nodeargs), ...args];
    // The node running the tests, rather than the first `node` on PATH: the same one on every machine.
    const child = await spawnAndWait(process.execPath, argv, pwd, env, options.timeoutMs ?? 45_000);
    return { stack, configWarnings: warnings, ...child, argv, pwd, ...engine.record };
  } finally {
    await engine.stop();
  }
}

/**
 * `getPwdMain` in pkg/engine/project.go: for a directory `main` the program
 * runs in that directory with entry point "."; for a file, in its directory.
 */
export function getPwdMain(root: string, main: string | undefined): { pwd: string; main: string } {
  if (!main) return { pwd: root, main: "." };
  const path = isAbsolute(main) ? main : resolve(root, main);
  if (!existsSync(path)) throw new Error(`project 'main' could not be read: ${path}`);
  return statSync(path).isDirectory() ? { pwd: path, main: "." } : { pwd: dirname(path), main: basename(path) };
}

/** `parseOptions`: TypeScript (ts-node) is on unless turned off; tsconfig and nodeargs are strings. */
function parseOptions(options: Record<string, unknown>): { typescript: boolean; tsconfig: string; nodeargs: string } {
  const typed = <T>(key: string, type: string, fallback: T): T => {
    if (options[key] === undefined) return fallback;
    if (typeof options[key] !== type) throw new Error(`${key} option must be a ${type}`);
    return options[key] as T;
  };
  return { typescript: typed("typescript", "boolean", true), tsconfig: typed("tsconfig", "string", ""), nodeargs: typed("nodeargs", "string", "") };
}

/** shlex.Split for the quoting nodeargs use: whitespace separates, quotes group. */
const splitArgs = (line: string) =>
  (line.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? []).map((arg) => arg.replace(/"([^"]*)"|'([^']*)'/g, "$1$2"));

function spawnAndWait(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number) {
  return new Promise<{ exitCode: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`the program did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      fail(error);
    });
    child.on("close", (exitCode) => {
      clearTimeout(timer);
      done({ exitCode, stdout, stderr });
    });
  });
}
