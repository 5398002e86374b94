import { createRequire } from 'node:module';

/**
 * mqtt-packet (the broker's and the cloud link's MQTT codec) calls the `debug`
 * package about ten times for every packet it parses. A disabled `debug`
 * logger still gathers its arguments into an array first: under QoS 1 load
 * that was 18 % of all the bytes the broker allocated (sampling heap
 * profile), paid for in garbage collection. Unless the DEBUG environment
 * variable asks for that output, mqtt-packet gets loggers that do nothing.
 * Imported first by the composition root, before it is loaded.
 */
function silenceDebugOf(dependent: string): void {
  const requireFromDependent = createRequire(createRequire(import.meta.url).resolve(dependent));
  const path = requireFromDependent.resolve('debug');
  const createDebug = requireFromDependent('debug') as ((namespace: string) => unknown) & Record<string, unknown>;
  const quiet = Object.assign((namespace: string) => disabledLogger(namespace), createDebug);
  requireFromDependent.cache[path]!.exports = quiet;
}

function disabledLogger(namespace: string): () => void {
  return Object.assign(() => {}, {
    namespace,
    enabled: false,
    extend: (sub: string, delimiter = ':') => disabledLogger(`${namespace}${delimiter}${sub}`),
    destroy: () => true,
  });
}

if (!process.env.DEBUG) {
  silenceDebugOf('mqtt-packet');
}
