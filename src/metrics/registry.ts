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

/**
 * The daemon's Prometheus registry: process figures (RSS, event-loop lag, heap)
 * under `outpost_`, the database size, the space left for it, and whatever services add.
 */
export function createMetricsRegistry(databaseSize: () => number, dataDir: string): Registry {
  const registry = new Registry();
  // The event-loop delay sampled once a second, not every 10 ms (prom-client's default): a timer
  // that wakes the process a hundred times a second keeps an idle board's CPU out of its sleep states.
  collectDefaultMetrics({ register: registry, prefix: 'outpost_', eventLoopMonitoringPrecision: 1000 });
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
