import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build";
import { TYPES } from "../rules";

/** Pulumi's own analyzer protocol (what the engine speaks to a policy pack), from the installed SDK. */
const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
const { AnalyzerClient } = require("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
const pb = require("@pulumi/pulumi/proto/analyzer_pb.js");
const { Struct } = require("google-protobuf/google/protobuf/struct_pb.js");

interface Diagnostic {
  policyname: string;
  enforcementlevel: number;
  message: string;
  urn: string;
}

let runner: ChildProcess | undefined;
afterAll(() => void runner?.kill());

/** Starts the pack the way `pulumi preview --policy-pack policy` does: Pulumi's run-policy-pack in the pack's folder. */
async function startPack(): Promise<string> {
  runner = spawn(process.execPath, [require.resolve("@pulumi/pulumi/cmd/run-policy-pack"), "127.0.0.1:1", "."], { cwd: join(ROOT, "policy") });
  let stderr = "";
  runner.stderr?.on("data", (chunk) => (stderr += String(chunk)));
  return new Promise((resolve, reject) => {
    runner?.stdout?.once("data", (chunk) => resolve(String(chunk).trim()));
    runner?.once("exit", (code) => reject(new Error(`the policy pack exited with ${code}: ${stderr}`)));
  });
}

function analyzeStack(port: string, resources: { type: string; name: string; props: object; protect: boolean }[]): Promise<Diagnostic[]> {
  const client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const request = new pb.AnalyzeStackRequest();
  request.setResourcesList(
    resources.map((r) => {
      const resource = new pb.AnalyzerResource();
      resource.setType(r.type);
      resource.setName(r.name);
      resource.setUrn(`urn:pulumi:prod::kv-worker-stack::${r.type}::${r.name}`);
      resource.setProperties(Struct.fromJavaScript(r.props));
      const options = new pb.AnalyzerResourceOptions();
      options.setProtect(r.protect);
      resource.setOptions(options);
      return resource;
    }),
  );
  return new Promise((resolve, reject) =>
    client.analyzeStack(request, (error: Error | null, reply: { toObject(): { diagnosticsList: Diagnostic[] } }) => {
      client.close();
      if (error) reject(error);
      else resolve(reply.toObject().diagnosticsList);
    }),
  );
}

describe("the policy pack under Pulumi's policy runner", () => {
  it("loads (TypeScript ESM through tsx) and reports a mandatory violation on the offending resource", async () => {
    const port = await startPack();
    const namespace = { type: TYPES.namespace, name: "kv-sessions", props: { id: "a".repeat(32), title: "kv-worker-stack-prod-sessions" } };
    const diagnostics = await analyzeStack(port, [{ ...namespace, protect: false }]);
    expect(diagnostics.map((d) => [d.policyname, d.enforcementlevel, d.urn])).toEqual([
      ["protected-production-namespaces", 1, `urn:pulumi:prod::kv-worker-stack::${TYPES.namespace}::kv-sessions`], // 1: mandatory
    ]);
    expect(diagnostics[0]?.message).toMatch(/kv-sessions is not protected in a stack with protect: true/);
    expect(await analyzeStack(port, [{ ...namespace, protect: true }])).toEqual([]);
  }, 30_000);
});
