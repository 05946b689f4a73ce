import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { KV_BINDINGS, type KvBinding } from "../../worker/src/contract";

export interface KvNamespacesArgs {
  accountId: string;
  titles: Record<KvBinding, { title: string; previewTitle: string }>;
  /** Protect and retain the production namespaces. */
  protect: boolean;
}

/**
 * One namespace per binding for the deployed Worker, and one `-preview`
 * namespace per binding for `wrangler dev --remote` (its `preview_id`), which
 * the deployed Worker is never bound to.
 */
export class KvNamespaces extends pulumi.ComponentResource {
  readonly ids: Record<KvBinding, pulumi.Output<string>>;
  readonly previewIds: Record<KvBinding, pulumi.Output<string>>;

  constructor(name: string, args: KvNamespacesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kv-worker-stack:cloudflare:KvNamespaces", name, {}, opts);
    // Logical names come from the binding, never from the title, and the title
    // is updated in place by the provider, so renaming a namespace never
    // replaces it. protect stops `pulumi destroy` and replacements;
    // retainOnDelete keeps the data even if the resource leaves the program.
    // Preview namespaces hold only scratch data from `wrangler dev --remote`.
    const safety = { protect: args.protect, retainOnDelete: args.protect };
    const ids = {} as Record<KvBinding, pulumi.Output<string>>;
    const previewIds = {} as Record<KvBinding, pulumi.Output<string>>;
    for (const binding of KV_BINDINGS) {
      const { title, previewTitle } = args.titles[binding];
      const logical = `${name}-${binding.toLowerCase()}`;
      ids[binding] = new cloudflare.WorkersKvNamespace(
        logical,
        { accountId: args.accountId, title },
        { parent: this, ...safety },
      ).id;
      previewIds[binding] = new cloudflare.WorkersKvNamespace(
        `${logical}-preview`,
        { accountId: args.accountId, title: previewTitle },
        { parent: this },
      ).id;
    }
    this.ids = ids;
    this.previewIds = previewIds;
    this.registerOutputs({ ids, previewIds });
  }
}
