import { execFile } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fencedBlockAfter } from "../../infra/test/runtime/walkthrough";
import { ROOT } from "../build";
import { type LocalStack, startLocalStack } from "../start";

const README = join(ROOT, "README.md");
const QUICK_START_MARKER = "<!-- quick-start: run by scripts/test/readme.test.ts -->";
const MAX_README_LINES = 200;

/** The block's shell lines with `\` continuations joined: one entry per command as a shell reads it. */
function logicalLines(block: string[]): string[] {
  const lines: string[] = [];
  let pending = "";
  for (const line of block) {
    if (line.endsWith("\\")) pending += `${line.slice(0, -1)} `;
    else {
      lines.push(pending + line);
      pending = "";
    }
  }
  return lines;
}

/** The status each curl of the block states in its trailing comment (`# 201 …`), in order; a curl without one is an error. */
function statedStatuses(block: string[]): number[] {
  return logicalLines(block)
    .filter((line) => /(^|\$\()\s*curl\s/.test(line.trim()))
    .map((line) => {
      const stated = /#\s*(\d{3})\b[^#]*$/.exec(line);
      if (!stated) throw new Error(`README's quick start: this command states no status (end it with "# <status> …"): ${line.trim()}`);
      return Number(stated[1]);
    });
}

// Every curl goes through this function: the real curl, its status recorded, its body printed as usual.
const RECORDING_CURL = `
curl() {
  local body code
  body=$(mktemp)
  code=$(command curl -sS -o "$body" -w '%{http_code}' "$@") || code=000
  echo "$code" >> "$STATUS_FILE"
  cat "$body"
  rm -f "$body"
}
`;

describe("README's quick start, run as written against npm start", () => {
  let stack: LocalStack;
  let origin: Server;
  let dir: string;
  const block = fencedBlockAfter(readFileSync(README, "utf8"), QUICK_START_MARKER, "README.md");

  beforeAll(async () => {
    // The dev stack's origin (dummyjson.com) is out of reach here; a local one answers the same paths.
    origin = createServer((request, response) => {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ id: Number(request.url?.split("/").pop()), title: "README product" }));
    });
    origin.listen(0, "127.0.0.1");
    await once(origin, "listening");
    const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "readme-admin-token", originUrl });
    dir = await mkdtemp(join(tmpdir(), "readme-"));
  }, 60_000);

  afterAll(async () => {
    await stack?.dispose();
    origin?.closeAllConnections();
    origin?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers every command with the status README states for it", async () => {
    const expected = statedStatuses(block);
    expect(expected.length).toBeGreaterThan(10);
    const statusFile = join(dir, "statuses");
    const { stdout } = await promisify(execFile)("bash", ["-c", `set -u\n${RECORDING_CURL}\n${block.join("\n")}`], {
      cwd: ROOT,
      env: { ...process.env, URL: stack.url, ADMIN_TOKEN: stack.adminToken, STATUS_FILE: statusFile },
    });
    const answered = (await readFile(statusFile, "utf8")).trim().split("\n").map(Number);
    expect(answered, `the commands printed:\n${stdout}`).toEqual(expected);
  }, 30_000);

  it("refuses a curl that states no status", () => {
    expect(() => statedStatuses(["curl $URL/health   # the health"])).toThrow(/states no status/);
    expect(statedStatuses(["SID=$(curl -s $URL/x \\", "  | sed 1p)   # 201 kept"])).toEqual([201]);
  });
});

describe("README and docs/", () => {
  const documents = [README, ...readdirSync(join(ROOT, "docs")).filter((name) => name.endsWith(".md")).map((name) => join(ROOT, "docs", name))];

  it(`keeps README to at most ${MAX_README_LINES} lines`, () => {
    expect(readFileSync(README, "utf8").trimEnd().split("\n").length).toBeLessThanOrEqual(MAX_README_LINES);
  });

  it("links only to files and headings that exist", () => {
    const broken: string[] = [];
    for (const document of documents) {
      const text = readFileSync(document, "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, anchor] = target!.split("#") as [string, string | undefined];
        const file = path === "" ? document : join(dirname(document), path);
        if (!existsSync(file)) broken.push(`${relative(ROOT, document)}: ${target} (no such file)`);
        else if (anchor && file.endsWith(".md") && !headingAnchors(readFileSync(file, "utf8")).has(anchor)) {
          broken.push(`${relative(ROOT, document)}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });
});

/** GitHub's anchors for a document's headings: lower case, punctuation dropped, spaces as hyphens. */
function headingAnchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map(([, heading]) =>
      heading!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, "")
        .replace(/\s/g, "-"),
    ),
  );
}
