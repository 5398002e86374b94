import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The daemon's Prometheus registry: process figures (RSS, event-loop lag, heap)
 * under `outpost_`, the database size, and whatever services add.
 */
export function createMetricsRegistry(databaseSize: () => number): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'outpost_' });
  new Gauge({
    name: 'outpost_db_size_bytes',
    help: 'Size of the SQLite database and its write-ahead log',
    registers: [registry],
    collect() {
      this.set(databaseSize());
    },
  });
  return registry;
}
