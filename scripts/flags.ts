/**
 * `npm run flags -- import FILE... --url URL --admin-token TOKEN [--lenient]`
 *   Loads flagd flag files (merged in order, `$evaluators` included) into a
 *   running stack. Every file is checked with flagd's schema first: a bad
 *   file exits 1 naming the file, the flag and the path, and nothing is
 *   written. Then POST /api/features, page by page (each under the request
 *   body limit and KV's operations per request), evaluators first.
 *   `--lenient` loads rules flagd's schema refuses, as flagd itself does
 *   (they evaluate as PARSE_ERROR), printing each as a warning.
 *
 * `npm run flags -- export --url URL --admin-token TOKEN > flags.json`
 *   Writes the live flags and evaluators as one flagd document; importing it
 *   gives the same flags back.
 *
 * The token may also come from ADMIN_TOKEN.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { IMPORT_PAGE_MAX_ENTRIES, MAX_BODY_BYTES } from "../worker/src/contract";
import { describeProblem, FLAGD_SCHEMA_URL, type FlagDocument, validateDocument } from "../worker/src/flags";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";

const log = (line: string) => console.error(line);

interface Target {
  url: string;
  token: string;
}

async function request(target: Target, method: string, path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new CliError(`cannot reach ${target.url}: ${(error as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let detail = text;
    try {
      const parsed = JSON.parse(text) as { error?: string; code?: string };
      detail = `${parsed.error} (${parsed.code})`;
    } catch {
      // not the JSON envelope: show the text
    }
    throw new CliError(`${method} ${path} answered ${res.status}: ${detail}`);
  }
  return text ? JSON.parse(text) : undefined;
}

/** Reads and checks every file; merges them in order (a later file's flag or evaluator replaces an earlier one's). */
export function readFlagFiles(files: string[], { lenient = false } = {}): { document: Required<Pick<FlagDocument, "flags" | "$evaluators">>; warnings: string[] } {
  const merged = { flags: {} as FlagDocument["flags"], $evaluators: {} as Record<string, unknown> };
  const warnings: string[] = [];
  const errors: string[] = [];
  for (const file of files) {
    let document: unknown;
    try {
      document = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      errors.push(`${file}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : `not valid JSON (${(error as Error).message})`}`);
      continue;
    }
    const result = validateDocument(document, { lenient });
    errors.push(...result.errors.map((problem) => `${file}: ${describeProblem(problem)}`));
    warnings.push(...result.warnings.map((problem) => `${file}: ${describeProblem(problem)} (loaded anyway, as flagd loads it)`));
    if (result.errors.length > 0) continue;
    const { flags, $evaluators = {} } = document as FlagDocument;
    for (const name of Object.keys(flags)) if (name in merged.flags) warnings.push(`${file}: flag ${name} replaces the one from an earlier file`);
    Object.assign(merged.flags, flags);
    Object.assign(merged.$evaluators, $evaluators);
  }
  if (errors.length > 0) throw new CliError(`nothing was written; fix these first:\n  ${errors.join("\n  ")}`);
  return { document: merged, warnings };
}

/** Pages of at most IMPORT_PAGE_MAX_ENTRIES entries whose JSON fits the request body limit; evaluators first. */
export function pagesOf(document: { flags: Record<string, unknown>; $evaluators: Record<string, unknown> }, maxBytes = MAX_BODY_BYTES): { flags: Record<string, unknown>; $evaluators: Record<string, unknown> }[] {
  const entries = [
    ...Object.entries(document.$evaluators).map(([name, value]) => ["$evaluators", name, value] as const),
    ...Object.entries(document.flags).map(([name, value]) => ["flags", name, value] as const),
  ];
  const pages: { flags: Record<string, unknown>; $evaluators: Record<string, unknown> }[] = [];
  let page = { flags: {} as Record<string, unknown>, $evaluators: {} as Record<string, unknown> };
  let count = 0;
  const size = (p: object) => new TextEncoder().encode(JSON.stringify(p)).byteLength;
  for (const [section, name, value] of entries) {
    const candidate = { ...page, [section]: { ...page[section], [name]: value } };
    if (count > 0 && (count >= IMPORT_PAGE_MAX_ENTRIES || size(candidate) > maxBytes)) {
      pages.push(page);
      page = { flags: {}, $evaluators: {} };
      count = 0;
    }
    page[section][name] = value;
    count += 1;
    if (size(page) > maxBytes) throw new CliError(`${section === "flags" ? "flag" : "evaluator"} ${name} alone is larger than the ${maxBytes}-byte request limit`);
  }
  if (count > 0) pages.push(page);
  return pages;
}

async function importFlags(files: string[], target: Target, lenient: boolean) {
  if (files.length === 0) throw new CliError("name at least one flagd file: npm run flags -- import FILE... --url URL --admin-token TOKEN");
  log(`checking ${files.length} file${files.length === 1 ? "" : "s"} against flagd's schema…`);
  const { document, warnings } = readFlagFiles(files, { lenient });
  for (const warning of warnings) log(`warning: ${warning}`);
  const pages = pagesOf(document);
  const total = { flags: 0, evaluators: 0 };
  log(`importing ${Object.keys(document.flags).length} flags and ${Object.keys(document.$evaluators).length} evaluators into ${target.url} in ${pages.length} page${pages.length === 1 ? "" : "s"}…`);
  for (const [i, page] of pages.entries()) {
    const written = (await request(target, "POST", `/api/features${lenient ? "?lenient=true" : ""}`, page)) as { flags: number; evaluators: number };
    total.flags += written.flags;
    total.evaluators += written.evaluators;
    log(`page ${i + 1}/${pages.length}: ${written.flags} flags, ${written.evaluators} evaluators written`);
  }
  log(`import done: ${total.flags} flags and ${total.evaluators} evaluators from ${files.length} file${files.length === 1 ? "" : "s"}${warnings.length ? `, ${warnings.length} warning${warnings.length === 1 ? "" : "s"}` : ""}`);
}

async function exportFlags(target: Target) {
  log(`exporting the flags of ${target.url}…`);
  const document = (await request(target, "GET", "/api/features?format=flagd")) as FlagDocument;
  process.stdout.write(`${JSON.stringify({ $schema: FLAGD_SCHEMA_URL, ...document }, null, 2)}\n`);
  log(`export done: ${Object.keys(document.flags).length} flags and ${Object.keys(document.$evaluators ?? {}).length} evaluators`);
}

async function main() {
  const { values, positionals } = parseFlags(() =>
    parseArgs({
      options: {
        url: { type: "string" },
        "admin-token": { type: "string" },
        lenient: { type: "boolean", default: false },
      },
      allowPositionals: true,
    }),
  );
  const [command, ...files] = positionals;
  const url = values.url?.replace(/\/+$/, "");
  const token = values["admin-token"] ?? process.env.ADMIN_TOKEN;
  if (command !== "import" && command !== "export") throw new CliError("usage: npm run flags -- import FILE... | export  --url URL --admin-token TOKEN");
  if (!url) throw new CliError("--url is required (the stack's base URL, e.g. http://127.0.0.1:8787)");
  if (!token) throw new CliError("--admin-token is required (or set ADMIN_TOKEN)");
  if (command === "import") await importFlags(files, { url, token }, values.lenient);
  else await exportFlags({ url, token });
}

if (isMain(import.meta.url)) runCommand("flags", main);
