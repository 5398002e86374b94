import { statfsSync } from 'node:fs';
import { Gauge, Registry, type DefaultMetricsCollectorConfiguration, type RegistryContentType } from 'prom-client';
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processCpuTotal from 'prom-client/lib/metrics/processCpuTotal.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import processResources from 'prom-client/lib/metrics/processResources.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import version from 'prom-client/lib/metrics/version.js';

/**
 * Bytes an unprivileged writer may still use on the filesystem of `path` (statfs: available
 * blocks); NaN while it cannot be told (the path is gone): a scrape must not fail, nor show 0.
 */
export function freeBytes(path: string): number {
  try {
    const { bavail, bsize } = statfsSync(path);
    return bavail * bsize;
  } catch {
    return Number.NaN;
  }
}

const EVENT_LOOP_SAMPLE_MS = 1000;

/**
 * Node's event-loop delay histogram records the time between its timer's ticks, sampling interval
 * included: every figure prom-client takes from it read a second more than the delay (an idle
 * daemon's maximum and p99 were 1.0 s). Its gauges report the delay beyond the interval. (The
 * standard deviation is not moved by it; `outpost_nodejs_eventloop_lag_seconds`, a setImmediate
 * timed at each scrape, does not use the histogram.)
 */
function reportDelayBeyondSampling(registry: Registry): void {
  for (const figure of ['min', 'max', 'mean', 'p50', 'p90', 'p99']) {
    const gauge = registry.getSingleMetric(`outpost_nodejs_eventloop_lag_${figure}_seconds`);
    if (!gauge) continue;
    const read = gauge.get.bind(gauge);
    gauge.get = async () => {
      const metric = await read();
      for (const sample of metric.values) sample.value = Math.max(0, sample.value - EVENT_LOOP_SAMPLE_MS / 1000);
      return metric;
    };
  }
}

/**
 * prom-client's default metrics (collectDefaultMetrics) but its GC duration histogram: the
 * `gc` PerformanceObserver that feeds it made every collection of the main thread cost ~115-180 µs
 * more CPU (Node.js 20; its scavenges kept more alive and took longer), and the daemon collects
 * often — a minor GC every MiB of a large body (buffer-garbage.ts): 9 % of the main thread's CPU
 * per 64 MiB PUT. Pauses still show in the event-loop lag figures.
 */
const PROCESS_METRICS = [processCpuTotal, processStartTime, osMemoryHeap, processOpenFileDescriptors, processMaxFileDescriptors, eventLoopLag,
  processResources, processHandles, processRequests, heapSizeAndUsed, heapSpacesSizeAndUsed, version];

/**
 * The daemon's Prometheus registry: process figures (RSS, event-loop lag, heap)
 * under `outpost_`, the database size, the space left for it, and whatever services add.
 */
export function createMetricsRegistry(databaseSize: () => number, dataDir: string): Registry {
  const registry = new Registry();
  // The event-loop delay sampled once a second, not every 10 ms (prom-client's default): a timer
  // that wakes the process a hundred times a second keeps an idle board's CPU out of its sleep states.
  const config: DefaultMetricsCollectorConfiguration<RegistryContentType> = { register: registry, prefix: 'outpost_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS };
  for (const register of PROCESS_METRICS) register(registry, config);
  reportDelayBeyondSampling(registry);
  new Gauge({
    name: 'outpost_db_size_bytes',
    help: 'Size of the SQLite database and its write-ahead log',
    registers: [registry],
    collect() {
      this.set(databaseSize());
    },
  });
  new Gauge({
    name: 'outpost_data_dir_free_bytes',
    help: "Space left on the data directory's filesystem (the database, the sync buffer): alert before it runs out",
    registers: [registry],
    collect() {
      this.set(freeBytes(dataDir));
    },
  });
  return registry;
}
