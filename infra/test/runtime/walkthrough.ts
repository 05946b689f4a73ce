/**
 * The `pulumi config set` commands the first-deployment walkthrough tells a
 * new user to run, read from the document itself so that the tests run
 * exactly what it says. The commands are the `pulumi config set` lines of the
 * fenced block that follows WALKTHROUGH_MARKER.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../../worker/build";
import type { ConfigSetCommand } from "./language-host";

/** The document holding the walkthrough (moving the block elsewhere changes only this). */
export const WALKTHROUGH_FILE = join(ROOT, "docs/deploy.md");
export const WALKTHROUGH_MARKER = "<!-- first-deploy: pulumi config set commands -->";

/** The fenced block after the marker, line by line. */
export function walkthroughBlock(text = readFileSync(WALKTHROUGH_FILE, "utf8")): string[] {
  return fencedBlockAfter(text, WALKTHROUGH_MARKER, WALKTHROUGH_FILE);
}

/** The lines of the fenced code block right after `marker` in a Markdown document (`file` names it in errors). */
export function fencedBlockAfter(text: string, marker: string, file: string): string[] {
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`${file} has no ${marker} marker`);
  const lines = text.slice(at + marker.length).split("\n");
  const open = lines.findIndex((line) => line.startsWith("```"));
  const close = lines.findIndex((line, i) => i > open && line.startsWith("```"));
  if (open < 0 || close < 0 || lines.slice(1, open).some((line) => line.trim() !== "")) {
    throw new Error(`the marker ${marker} in ${file} must be followed by a fenced code block`);
  }
  return lines.slice(open + 1, close);
}

/** Shell words of a command line, quotes kept, the trailing `# comment` dropped. */
function shellWords(line: string): string[] {
  const words = line.match(/(?:[^\s"'#]+|"[^"]*"|'[^']*')+|#.*/g) ?? [];
  const comment = words.findIndex((word) => word.startsWith("#"));
  return comment < 0 ? words : words.slice(0, comment);
}

/**
 * One shell word's value. `<name>` placeholders (what the user types in)
 * come from `placeholders`; anything with quotes or `$(…)` is expanded by
 * sh itself, so `"$(openssl rand -hex 32)"` runs openssl as it would for the user.
 */
function expand(word: string, placeholders: Record<string, string>): string {
  const placeholder = /^<([^>]+)>$/.exec(word);
  if (placeholder) {
    const value = placeholders[placeholder[1]!];
    if (value === undefined) throw new Error(`the walkthrough uses ${word}, for which the test has no value; add it to the test's placeholders`);
    return value;
  }
  if (!/["'$`\\]/.test(word)) return word;
  return execFileSync("sh", ["-c", `printf '%s' ${word}`], { encoding: "utf8" });
}

/** The walkthrough's `pulumi config set` commands for `stack`, in order, with placeholders filled in. */
export function walkthroughCommands(stack: string, placeholders: Record<string, string>, lines = walkthroughBlock()): ConfigSetCommand[] {
  const commands: ConfigSetCommand[] = [];
  for (const line of lines) {
    const words = shellWords(line);
    if (words[0] !== "pulumi" || words[1] !== "config" || words[2] !== "set") continue;
    const args = words.slice(3);
    let secret = false;
    let otherStack = false;
    const positional: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (arg === "--secret") secret = true;
      else if (arg === "--plaintext") secret = false;
      else if (arg === "--stack" || arg === "-s") {
        // A command for another stack is not part of this stack's walkthrough.
        if (args[++i] !== stack) otherStack = true;
      } else if (arg.startsWith("-")) throw new Error(`the walkthrough's \`${line.trim()}\` uses ${arg}, which the harness's config set does not emulate`);
      else positional.push(arg);
    }
    if (otherStack) continue;
    if (positional.length !== 2) throw new Error(`\`${line.trim()}\` is not \`pulumi config set [--secret] <key> <value>\``);
    commands.push({ key: positional[0]!, value: expand(positional[1]!, placeholders), secret });
  }
  return commands;
}
