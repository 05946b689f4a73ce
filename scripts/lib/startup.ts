/**
 * Startup CPU time of a Worker bundle, as `wrangler check startup` profiles it
 * offline: the bundle runs in a local workerd and the startup phase (module
 * evaluation, before the first request) is sampled. The bundle is uploaded
 * as-is (`no_bundle`), as the Pulumi program uploads dist/worker.js.
 *
 * One profile holds a handful of samples, so single runs differ by several
 * milliseconds; runs alternate between the bundle and a fixed-200 Worker and
 * the medians are compared.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { COMPATIBILITY_DATE, COMPATIBILITY_FLAGS } from "../../worker/src/contract";
import { ROOT } from "../build";
import { FIXED_200 } from "./bench-stack";

/** One profile: its window (the startup phase, wall time) and the CPU time sampled active in it. */
export interface StartupProfile {
  windowMs: number;
  activeMs: number;
}

export interface StartupResult {
  runs: number;
  /** Medians per Worker. */
  bundle: StartupProfile;
  fixed200: StartupProfile;
  /** Every run, in order. */
  bundleRuns: StartupProfile[];
  fixed200Runs: StartupProfile[];
  wrangler: string;
}

/** Runs `wrangler check startup` once on `script` (a path). */
async function profileOnce(script: string): Promise<StartupProfile> {
  const dir = await mkdtemp(join(tmpdir(), "startup-"));
  try {
    await copyFile(script, join(dir, "worker.js"));
    const config = {
      name: "startup-check",
      main: "worker.js",
      compatibility_date: COMPATIBILITY_DATE,
      compatibility_flags: [...COMPATIBILITY_FLAGS],
      no_bundle: true,
    };
    await writeFile(join(dir, "wrangler.json"), JSON.stringify(config));
    const { stdout } = await promisify(execFile)(join(ROOT, "node_modules/.bin/wrangler"), ["check", "startup", "--outfile", join(dir, "startup.cpuprofile")], {
      cwd: dir,
      timeout: 120_000,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    });
    // eslint-disable-next-line no-control-regex
    const text = stdout.replace(/\u001b\[[0-9;]*m/g, "");
    const figure = (label: string) => {
      const match = new RegExp(`${label}: ([\\d.]+) ms`).exec(text);
      if (!match) throw new Error(`wrangler check startup printed no "${label}: … ms" line:\n${text}`);
      return Number(match[1]);
    };
    return { windowMs: figure("Profile window"), activeMs: figure("Active") };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Profiles `bundlePath` and a fixed-200 Worker `runs` times each, alternating. */
export async function measureStartup(bundlePath: string, runs: number, log: (line: string) => void = () => {}): Promise<StartupResult> {
  const dir = await mkdtemp(join(tmpdir(), "startup-ref-"));
  const fixed200 = join(dir, "fixed-200.js");
  await writeFile(fixed200, FIXED_200);
  try {
    const bundleRuns: StartupProfile[] = [];
    const fixed200Runs: StartupProfile[] = [];
    for (let i = 0; i < runs; i++) {
      const pair: [StartupProfile[], string][] = [
        [bundleRuns, bundlePath],
        [fixed200Runs, fixed200],
      ];
      for (const [into, script] of i % 2 === 0 ? pair : pair.reverse()) into.push(await profileOnce(script));
      const show = (p: StartupProfile) => `${p.windowMs} ms window, ${p.activeMs} ms active`;
      log(`  startup run ${i + 1}: bundle ${show(bundleRuns.at(-1)!)}; fixed-200 ${show(fixed200Runs.at(-1)!)}`);
    }
    const medians = (xs: StartupProfile[]): StartupProfile => ({ windowMs: median(xs.map((x) => x.windowMs)), activeMs: median(xs.map((x) => x.activeMs)) });
    const { version } = JSON.parse(await readFile(join(ROOT, "node_modules/wrangler/package.json"), "utf8")) as { version: string };
    return { runs, bundle: medians(bundleRuns), fixed200: medians(fixed200Runs), bundleRuns, fixed200Runs, wrangler: version };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
