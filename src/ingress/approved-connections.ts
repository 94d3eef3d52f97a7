// Live exchanges an approval let through, by approval id: when the approval is revoked or
// expires, each is closed at once rather than living on until it idles out.

export class ApprovedConnections {
  readonly #byApproval = new Map<string, Set<() => void>>();

  /** Registers `cut` under the approval; the returned function unregisters it (call it on close). */
  track(approvalId: string, cut: () => void): () => void {
    const set = this.#byApproval.get(approvalId) ?? new Set();
    set.add(cut);
    this.#byApproval.set(approvalId, set);
    return () => {
      set.delete(cut);
      if (set.size === 0 && this.#byApproval.get(approvalId) === set) this.#byApproval.delete(approvalId);
    };
  }

  /** Closes everything the approval let through; returns how many were open. */
  cut(approvalId: string): number {
    const set = this.#byApproval.get(approvalId);
    if (set === undefined) return 0;
    this.#byApproval.delete(approvalId);
    const open = [...set];
    for (const cut of open) cut();
    return open.length;
  }
}
