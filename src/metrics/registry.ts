import { statfsSync } from 'node:fs';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

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
 * The daemon's Prometheus registry: process figures (RSS, event-loop lag, heap)
 * under `outpost_`, the database size, the space left for it, and whatever services add.
 */
export function createMetricsRegistry(databaseSize: () => number, dataDir: string): Registry {
  const registry = new Registry();
  // The event-loop delay sampled once a second, not every 10 ms (prom-client's default): a timer
  // that wakes the process a hundred times a second keeps an idle board's CPU out of its sleep states.
  collectDefaultMetrics({ register: registry, prefix: 'outpost_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
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
