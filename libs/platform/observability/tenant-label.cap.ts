/** The tenant_id label value of every tenant without a series of its own. */
export const OTHER_TENANTS = 'other';

/**
 * Caps the tenant_id label values of per-tenant metrics at `max` (METRICS_TENANT_LABELS_MAX): the
 * tenants with the most traffic keep a series of their own, every other tenant counts as `other`.
 * Without it /metrics grew one series per tenant ever served (221 KB at 2,360 tenants, issue 15).
 *
 * Labels are handed out first come while there is room; after that, `rebalance()` (on each scrape)
 * swaps in a tenant counted under `other` whose traffic since the last scrape beat the quietest
 * labelled tenant's, and returns the demoted ids so their series can be removed. Hits halve at
 * every rebalance, so old traffic fades. Candidates are an LRU of 4 × max entries: the structure
 * stays bounded however many tenants there are. The hot path is one Map lookup and an increment.
 * Hand-written: prom-client has no label cap, and a heavy-hitter sketch library would be more
 * machinery than this bounded map.
 */
export class TenantLabelCap {
  private readonly labelled = new Map<string, number>();
  // Insertion order is recency order: a hit moves the candidate to the end, the oldest is dropped.
  private readonly candidates = new Map<string, number>();

  constructor(readonly max: number) {}

  /** The label for a tenant's sample: its id while it has a series, else `other`. */
  labelOf(tenantId: string): string {
    const hits = this.labelled.get(tenantId);
    if (hits !== undefined) {
      this.labelled.set(tenantId, hits + 1);
      return tenantId;
    }
    if (this.labelled.size < this.max) {
      this.labelled.set(tenantId, 1);
      return tenantId;
    }
    const seen = this.candidates.get(tenantId) ?? 0;
    this.candidates.delete(tenantId);
    this.candidates.set(tenantId, seen + 1);
    if (this.candidates.size > this.max * 4) this.candidates.delete(this.candidates.keys().next().value as string);
    return OTHER_TENANTS;
  }

  /** Promotes busier candidates over quieter labelled tenants; returns the ids whose series must go. */
  rebalance(): string[] {
    const demoted: string[] = [];
    if (this.candidates.size > 0) {
      const busiest = [...this.candidates].sort((a, b) => b[1] - a[1]);
      const quietest = [...this.labelled].sort((a, b) => a[1] - b[1]);
      for (let i = 0; i < busiest.length && i < quietest.length; i++) {
        const [up, upHits] = busiest[i];
        const [down, downHits] = quietest[i];
        if (upHits <= downHits) break;
        this.labelled.delete(down);
        this.labelled.set(up, upHits);
        this.candidates.delete(up);
        demoted.push(down);
      }
    }
    for (const [id, hits] of this.labelled) this.labelled.set(id, hits >> 1);
    for (const [id, hits] of this.candidates) {
      if (hits >> 1 === 0) this.candidates.delete(id);
      else this.candidates.set(id, hits >> 1);
    }
    return demoted;
  }

  /** Tenants that have a series of their own now. */
  get size(): number {
    return this.labelled.size;
  }
}
