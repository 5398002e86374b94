import { Counter, Gauge, type Registry } from 'prom-client';
import type { SyncStatus } from './status.js';

/** The figures of `outpost sync status` as Prometheus metrics, read from one status snapshot per scrape. */
export function registerSyncMetrics(registry: Registry, status: () => SyncStatus): void {
  const registers = [registry];
  let snapshot: SyncStatus | undefined;
  // One snapshot serves every metric of a scrape; the first collect() of the scrape takes it.
  const current = () => {
    if (!snapshot) {
      snapshot = status();
      setImmediate(() => { snapshot = undefined; });
    }
    return snapshot;
  };
  new Gauge({ name: 'outpost_sync_online', help: '1 while connected to the cloud broker', registers, collect() { this.set(current().online ? 1 : 0); } });
  new Gauge({ name: 'outpost_sync_paused', help: '1 while sending is paused (outpost sync pause)', registers, collect() { this.set(current().paused ? 1 : 0); } });
  new Gauge({ name: 'outpost_sync_dead_letters', help: 'Items in the sync dead-letter list', registers, collect() { this.set(current().deadLetters); } });

  new Gauge({ name: 'outpost_sync_s3_online', help: '1 while the last request to cloud S3 got an answer (absent without sync.objects rules, and until the first request)', registers, collect() {
    const uploads = current().uploads;
    // absent rather than 0 (a gauge without labels reads 0 once reset): no alert on a gateway that asked nothing
    this.remove();
    if (uploads && (uploads.online || uploads.lastError !== null)) this.set(uploads.online ? 1 : 0);
  } });
  new Counter({ name: 'outpost_sync_upload_sent_bytes_total', help: 'Object bytes sent to cloud S3, retries included (since start)', registers, collect() {
    this.reset();
    this.inc(current().uploads?.sentBytes ?? 0);
  } });
  new Counter({ name: 'outpost_sync_uploads_superseded_total', help: 'Uploads skipped because the local object changed or was deleted first (since start)', registers, collect() {
    this.reset();
    this.inc(current().uploads?.superseded ?? 0);
  } });

  const lane = ['lane'] as const;
  new Gauge({ name: 'outpost_sync_lane_items', help: 'Items waiting per lane (live: arrived while connected; backlog: older)', labelNames: lane, registers, collect() {
    for (const entry of current().lanes) this.set({ lane: entry.lane }, entry.items);
  } });
  new Gauge({ name: 'outpost_sync_lane_drain_rate', help: 'Items acknowledged by the cloud per second per lane', labelNames: lane, registers, collect() {
    for (const entry of current().lanes) this.set({ lane: entry.lane }, entry.drainRate);
  } });

  const rule = ['rule'] as const;
  const ruleGauge = (name: string, help: string, value: (r: SyncStatus['rules'][number]) => number | null) =>
    new Gauge({ name, help, labelNames: rule, registers, collect() {
      this.reset();
      for (const entry of current().rules) {
        const figure = value(entry);
        if (figure !== null) this.set({ rule: entry.rule }, figure);
      }
    } });
  ruleGauge('outpost_sync_backlog_items', 'Items of the rule in the outbox', (r) => r.backlog);
  ruleGauge('outpost_sync_backlog_bytes', 'Bytes of the rule in the outbox (as counted against sync.maxBytes)', (r) => r.backlogBytes);
  ruleGauge('outpost_sync_oldest_age_seconds', "Monotonic age of the rule's oldest item", (r) => r.oldestAgeSeconds);

  const ruleCounter = (name: string, help: string, value: (r: SyncStatus['rules'][number]) => number) =>
    new Counter({ name, help, labelNames: rule, registers, collect() {
      this.reset();
      for (const entry of current().rules) this.inc({ rule: entry.rule }, value(entry));
    } });
  ruleCounter('outpost_sync_delivered_total', 'Items the cloud acknowledged (since start)', (r) => r.delivered);
  ruleCounter('outpost_sync_dropped_total', 'Items dropped by an overflow policy', (r) => r.dropped);
  ruleCounter('outpost_sync_rejected_total', 'Messages not stored: refused by reject-new (QoS 1: PUBACK withheld), or the write failed', (r) => r.rejected);
  ruleCounter('outpost_sync_expired_total', 'Items whose time-to-live ran out', (r) => r.expired);
  ruleCounter('outpost_sync_dead_lettered_total', 'Items moved to the dead-letter list', (r) => r.deadLettered);

  const inboundCounter = (name: string, help: string, value: (r: SyncStatus['inbound'][number]) => number) =>
    new Counter({ name, help, labelNames: rule, registers, collect() {
      this.reset();
      for (const entry of current().inbound) this.inc({ rule: entry.rule }, value(entry));
    } });
  inboundCounter('outpost_sync_inbound_delivered_total', 'Cloud messages of the inbound rule the local broker took (since start)', (r) => r.delivered);
  inboundCounter('outpost_sync_inbound_failures_total', 'Failed local publishes of the inbound rule, each retry counted (since start)', (r) => r.failures);
}
