/**
 * What every command in scripts/ shares: how it knows it was run directly,
 * how it reads the git-ignored .dev.vars file, and how it fails.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { ApiResponseError, ApiUnreachableError } from "../../client/index.ts";
import { CliConfigError } from "../../infra/cli-config";
import { ConfigError } from "../../infra/stack-file";

/** The git-ignored file of local settings and secrets, at the repository root. */
export const DEV_VARS_PATH = fileURLToPath(new URL("../../.dev.vars", import.meta.url));

/** An expected failure: printed as one line, without a stack trace, and exits with `exitCode`. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    /** 1, or e.g. 2 when a tool the command needs is missing. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** True when the module at `moduleUrl` is the script node/tsx was asked to run. */
export const isMain = (moduleUrl: string) =>
  process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(moduleUrl);

/**
 * Runs a command's main function. An expected failure (a CliError, or a stack
 * config the user must fix, refused by the program or by the CLI's config
 * phase) prints `<command>: <message>` and exits with its code; anything else
 * also prints its stack and exits 1.
 */
export function runCommand(command: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    const expected = error instanceof CliError || error instanceof ConfigError || error instanceof CliConfigError;
    console.error(`${command}: ${expected ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(error instanceof CliError ? error.exitCode : 1);
  });
}

/**
 * Reads KEY=value lines in wrangler's .dev.vars (dotenv) format: comments,
 * single/double quotes and `export` prefixes are handled by Node's own parser.
 * A missing file is an empty one.
 */
export function readDevVars(path = DEV_VARS_PATH): Record<string, string> {
  let content: string;
  try {
    content = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  return Object.fromEntries(Object.entries(parseEnv(content)).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** Runs node:util parseArgs, turning a bad flag into a one-line CliError. */
export function parseFlags<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
}

/** The first value that is set, in precedence order. */
export const firstSet = (...values: (string | undefined)[]) => values.find((value) => value !== undefined && value !== "");

/** Short description of a network failure (ECONNREFUSED…); the typed client owns it. */
export { describeFetchError } from "../../client/index.ts";

/** A typed-client failure as a command reports it: the origin it could not reach, or what the Worker answered. */
export const apiFailure =
  (url: string) =>
  (error: unknown): never => {
    if (error instanceof ApiUnreachableError) throw new CliError(`cannot reach ${new URL(url).origin}: ${error.reason}`);
    if (error instanceof ApiResponseError) throw new CliError(error.message);
    throw error;
  };

/** One page of a resumable admin operation (purge, revoke): how much it did, and where to go on. */
export interface ResumablePage {
  complete: boolean;
  cursor?: string | undefined;
}

/**
 * Calls a resumable operation page by page, each call handing the Worker the
 * cursor the previous one returned, until it answers `complete: true`. `done`
 * says how much a page did, for the running total `log` prints.
 */
export async function drainPages<P extends ResumablePage>(
  url: string,
  fetchPage: (cursor: string | undefined) => Promise<P>,
  done: (page: P) => number,
  verb: string,
  log: (line: string) => void,
): Promise<{ total: number; pages: number }> {
  let total = 0;
  let pages = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor).catch(apiFailure(url));
    pages += 1;
    total += done(page);
    log(`page ${pages}: ${verb} ${done(page)} (${total} so far)`);
    if (page.complete) return { total, pages };
    if (page.cursor === undefined) throw new CliError(`${new URL(url).origin} answered complete: false without a cursor`);
    cursor = page.cursor;
  }
}
