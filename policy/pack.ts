/**
 * The policy pack Pulumi runs (`pulumi preview --policy-pack policy`; ./index.cjs loads it). Each
 * policy is a stack validation that adapts Pulumi's resources and calls the
 * plain rule in ./rules.ts, the same function `npm run plan` calls offline.
 */
import { type PolicyResource, PolicyPack } from "@pulumi/policy";
import { policyContext } from "./context";
import { RULES, type StackResource } from "./rules";

/** `urn:pulumi:<stack>::<project>::<type>::<name>` → `<stack>`. */
const stackOf = (urn: string) => urn.split("::")[0]?.split(":").pop() ?? "";

const toStackResource = (r: PolicyResource): StackResource => ({
  type: r.type,
  name: r.name,
  id: typeof r.props.id === "string" ? r.props.id : undefined,
  inputs: r.props,
  protect: r.opts.protect,
  // Pulumi's policy API does not expose retainOnDelete; `npm run plan` checks it.
  retainOnDelete: undefined,
});

new PolicyPack("kv-worker-stack", {
  policies: RULES.map((rule) => ({
    name: rule.name,
    description: rule.description,
    enforcementLevel: rule.enforcementLevel,
    validateStack: (args, reportViolation) => {
      const first = args.resources[0];
      if (!first) return;
      const resources = args.resources.map(toStackResource);
      for (const violation of rule.check(resources, policyContext(stackOf(first.urn)))) {
        reportViolation(violation.message, args.resources.find((r) => r.name === violation.resource)?.urn);
      }
    },
  })),
});
