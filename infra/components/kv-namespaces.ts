import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { KV_BINDINGS, type KvBinding } from "../../worker/src/contract";
import type { AdoptedNamespace } from "../stack-file";

export interface KvNamespacesArgs {
  accountId: string;
  titles: Record<KvBinding, { title: string; previewTitle: string }>;
  /** Protect and retain the production namespaces. */
  protect: boolean;
  /** Existing namespaces to import rather than create, by binding. */
  adopted: Partial<Record<KvBinding, AdoptedNamespace>>;
}

/**
 * Options that import an existing namespace: the provider's import id is
 * `<account_id>/<namespace_id>`. An adopted namespace holds live data, so it
 * is protected and retained whatever the stack's `protect` says. Its current
 * title must be the input or the import fails; when the title is not known,
 * ignoreChanges makes Pulumi keep the title it reads.
 */
function importing(accountId: string, id: string, title: string | undefined): pulumi.CustomResourceOptions {
  return { import: `${accountId}/${id}`, protect: true, retainOnDelete: true, ...(title === undefined ? { ignoreChanges: ["title"] } : {}) };
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
      const adopted = args.adopted[binding];
      const logical = `${name}-${binding.toLowerCase()}`;
      ids[binding] = new cloudflare.WorkersKvNamespace(
        logical,
        { accountId: args.accountId, title: adopted?.title ?? title },
        { parent: this, ...(adopted ? importing(args.accountId, adopted.id, adopted.title) : safety) },
      ).id;
      const adoptedPreview = adopted?.previewId;
      previewIds[binding] = new cloudflare.WorkersKvNamespace(
        `${logical}-preview`,
        { accountId: args.accountId, title: adopted?.previewTitle ?? previewTitle },
        { parent: this, ...(adoptedPreview ? importing(args.accountId, adoptedPreview, adopted.previewTitle) : {}) },
      ).id;
    }
    this.ids = ids;
    this.previewIds = previewIds;
    this.registerOutputs({ ids, previewIds });
  }
}
