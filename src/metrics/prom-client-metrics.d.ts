// Types for prom-client 15's default metrics, each a module of its own (registered by collectDefaultMetrics together).
declare module 'prom-client/lib/metrics/*' {
  import type { DefaultMetricsCollectorConfiguration, RegistryContentType, Registry } from 'prom-client';

  const register: (registry: Registry, config: DefaultMetricsCollectorConfiguration<RegistryContentType>) => void;
  export default register;
}
