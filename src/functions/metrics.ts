import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { InvokeResult } from './runtime/pool.js';
import { FunctionApiError } from './errors.js';

/** Per-function Prometheus figures: invocations, errors, throttles, duration, async queue and dead letters. */
export class FunctionMetrics {
  private readonly invocations: Counter<'function'>;
  private readonly errors: Counter<'function'>;
  private readonly throttles: Counter<'function'>;
  private readonly duration: Histogram<'function'>;

  constructor(registry: Registry, figures: { queued: () => Map<string, number>; deadLetters: () => number }) {
    const registers = [registry];
    const labelNames = ['function'] as const;
    this.invocations = new Counter({ name: 'outpost_function_invocations_total', help: 'Function invocations that ran', labelNames, registers });
    this.errors = new Counter({ name: 'outpost_function_errors_total', help: 'Invocations that ended in a function error', labelNames, registers });
    this.throttles = new Counter({ name: 'outpost_function_throttles_total', help: 'Invocations refused with TooManyRequestsException', labelNames, registers });
    this.duration = new Histogram({
      name: 'outpost_function_duration_seconds', help: 'Invocation duration, from dispatch to response',
      labelNames, registers, buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60],
    });
    new Gauge({
      name: 'outpost_function_async_queue_depth', help: 'Asynchronous events waiting or running', labelNames, registers,
      collect() {
        this.reset();
        for (const [name, depth] of figures.queued()) this.set({ function: name }, depth);
      },
    });
    new Gauge({ name: 'outpost_function_dead_letters', help: 'Events in the dead-letter queue', registers, collect() { this.set(figures.deadLetters()); } });
  }

  /** Wraps one invocation: counts it, its error or throttle, and times it. */
  async measure(name: string, run: () => Promise<InvokeResult>): Promise<InvokeResult> {
    const started = process.hrtime.bigint();
    let result: InvokeResult;
    try {
      result = await run();
    } catch (error) {
      if (error instanceof FunctionApiError && error.status === 429) this.throttles.inc({ function: name });
      throw error;
    }
    this.invocations.inc({ function: name });
    if (result.functionError) this.errors.inc({ function: name });
    this.duration.observe({ function: name }, Number(process.hrtime.bigint() - started) / 1e9);
    return result;
  }
}
