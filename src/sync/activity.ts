export interface RuleOutcomes {
  delivered: number;
  /** Failed attempts (an inbound message the local broker could not take yet counts each retry). */
  failures: number;
  /** Wall-clock epoch milliseconds (formatted only when shown: this runs for every delivered message). */
  lastSuccessMs?: number;
  lastFailure?: { at: string; reason: string };
}

/** Per rule: deliveries and failures since start, and the last success and failure, for `outpost sync status` (memory only). */
export class RuleActivity {
  private readonly rules = new Map<string, RuleOutcomes>();

  constructor(private readonly wallMs: () => number) {}

  succeeded(rule: string): void {
    const outcomes = this.of(rule);
    outcomes.delivered++;
    outcomes.lastSuccessMs = this.wallMs();
  }

  failed(rule: string, reason: string): void {
    const outcomes = this.of(rule);
    outcomes.failures++;
    outcomes.lastFailure = { at: new Date(this.wallMs()).toISOString(), reason };
  }

  of(rule: string): RuleOutcomes {
    let outcomes = this.rules.get(rule);
    if (!outcomes) {
      outcomes = { delivered: 0, failures: 0 };
      this.rules.set(rule, outcomes);
    }
    return outcomes;
  }
}
