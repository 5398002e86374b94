import type { CloudLimits, LinkState } from './cloud-link.js';
import type { Outbox } from './outbox.js';
import type { RuleActivity, RuleOutcomes } from './activity.js';
import type { Lane, Sender } from './sender.js';
import type { ShadowSyncStatus } from './shadow-sync.js';
import type { UploadStatus } from './objects/uploader.js';

export interface RuleStatus {
  rule: string;
  backlog: number;
  backlogBytes: number;
  oldestAgeSeconds: number | null;
  delivered: number;
  dropped: number;
  rejected: number;
  expired: number;
  deadLettered: number;
  lastSuccess: string | null;
  lastFailure: { at: string; reason: string } | null;
}

/** An inbound rule (cloud → local bus), since start. */
export interface InboundRuleStatus {
  rule: string;
  /** Cloud messages the local broker took (and the cloud got its PUBACK for). */
  delivered: number;
  /** Local publishes that failed (a full disk), each retry counted, the message waiting unacknowledged; and SUBSCRIBEs of its filter the cloud refused. */
  failures: number;
  lastSuccess: string | null;
  lastFailure: { at: string; reason: string } | null;
}

export interface LaneStatus {
  lane: Lane;
  items: number;
  bytes: number;
  /** Acknowledged messages per second, smoothed over the last seconds. */
  drainRate: number;
  /** Seconds until the lane is empty at that rate; null when it is not draining. */
  etaSeconds: number | null;
}

export interface SyncStatus {
  enabled: boolean;
  /** The client id on the cloud broker (configured, or this installation's). */
  clientId: string;
  online: boolean;
  since: string;
  lastError: string | null;
  /** While offline: when the next connection attempt is due (ISO time), null while it is being made. */
  nextAttempt: string | null;
  /**
   * What the cloud's CONNACK allows on the current connection (MQTT 5; 3.1.1 announces nothing);
   * null while offline. With maximumQoS 0, QoS 1 rules and shadow requests are sent at QoS 0.
   */
  cloudLimits: CloudLimits | null;
  paused: boolean;
  inFlight: number;
  /** The outbox item sent alone before the others: the cloud closed a connection with it unacknowledged (docs/sync.md, Dead letters). */
  suspect: number | null;
  outbox: { items: number; bytes: number; maxBytes: number };
  deadLetters: number;
  lanes: LaneStatus[];
  rules: RuleStatus[];
  inbound: InboundRuleStatus[];
  shadows: ShadowSyncStatus[];
  /** Object uploads to cloud S3; null without sync.objects rules. */
  uploads: UploadStatus | null;
}

/** Smoothed acknowledgements per second per lane, sampled once a second. */
export class DrainRates {
  readonly rates: Record<Lane, number> = { live: 0, backlog: 0 };

  sample(sender: Sender, seconds: number): void {
    for (const lane of ['live', 'backlog'] as const) {
      const current = sender.ackedSinceSample[lane] / seconds;
      sender.ackedSinceSample[lane] = 0;
      const smoothed = this.rates[lane] === 0 ? current : 0.5 * this.rates[lane] + 0.5 * current;
      // a rate that shows as 0.0 (status rounds to tenths) is 0, so that an idle agent stops sampling
      this.rates[lane] = smoothed < 0.05 ? 0 : smoothed;
    }
  }

  get settled(): boolean {
    return this.rates.live === 0 && this.rates.backlog === 0;
  }
}

export function syncStatus(parts: {
  enabled: boolean; clientId: string; link: LinkState; sender: Sender; outbox: Outbox; activity: RuleActivity; rates: DrainRates; maxBytes: number; ruleNames: string[];
  inbound: Array<{ rule: string } & RuleOutcomes>; shadows: ShadowSyncStatus[];
  uploads: UploadStatus | null;
}): SyncStatus {
  const { outbox, sender, rates } = parts;
  const lanes: LaneStatus[] = [
    { lane: 'live', items: outbox.liveCount, bytes: outbox.liveBytes, drainRate: round(rates.rates.live), etaSeconds: null },
    { lane: 'backlog', items: outbox.totalCount - outbox.liveCount, bytes: outbox.totalBytes - outbox.liveBytes, drainRate: round(rates.rates.backlog), etaSeconds: null },
  ];
  for (const lane of lanes) lane.etaSeconds = lane.items === 0 ? 0 : lane.drainRate > 0 ? Math.ceil(lane.items / lane.drainRate) : null;
  const names = [...new Set([...parts.ruleNames, ...outbox.rules()])];
  return {
    enabled: parts.enabled,
    clientId: parts.clientId,
    online: parts.link.online,
    since: parts.link.since,
    lastError: parts.link.lastError ?? null,
    nextAttempt: parts.link.online ? null : parts.link.nextAttempt ?? null,
    cloudLimits: parts.link.limits,
    paused: sender.paused,
    inFlight: sender.inFlightCount(),
    suspect: sender.suspectId(),
    outbox: { items: outbox.totalCount, bytes: outbox.totalBytes, maxBytes: parts.maxBytes },
    deadLetters: outbox.deadLetterCount(),
    lanes,
    rules: names.map((rule) => {
      const figures = outbox.figuresOf(rule);
      const outcomes = parts.activity.of(rule);
      const age = outbox.oldestAgeMs(rule);
      return {
        rule,
        backlog: figures.count,
        backlogBytes: figures.bytes,
        oldestAgeSeconds: age === undefined ? null : Math.max(0, Math.round(age / 1000)),
        delivered: outcomes.delivered,
        dropped: figures.dropped,
        rejected: figures.rejected,
        expired: figures.expired,
        deadLettered: figures.deadLettered,
        lastSuccess: outcomes.lastSuccessMs === undefined ? null : new Date(outcomes.lastSuccessMs).toISOString(),
        lastFailure: outcomes.lastFailure ?? null,
      };
    }),
    inbound: parts.inbound.map((outcomes) => ({
      rule: outcomes.rule,
      delivered: outcomes.delivered,
      failures: outcomes.failures,
      lastSuccess: outcomes.lastSuccessMs === undefined ? null : new Date(outcomes.lastSuccessMs).toISOString(),
      lastFailure: outcomes.lastFailure ?? null,
    })),
    shadows: parts.shadows,
    uploads: parts.uploads,
  };
}

function round(rate: number): number {
  return Math.round(rate * 10) / 10;
}
