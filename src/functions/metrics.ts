import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { InvokeResult } from './runtime/pool.js';
import { FunctionApiError } from './errors.js';

/** Per-function Prometheus figures: invocations, errors, throttles, duration, async queue and dead letters. */
export class FunctionMetrics {
  private readonly invocations: Counter<'function'>;
  private readonly errors: Counter<'function'>;
  private readonly throttles: Counter<'function'>;
  private readonly duration: Histogram<'function'>;
  /** The series of each function, looked up once: a label lookup per event costs more than the count. */
  private readonly series = new Map<string, { invocations: Counter.Internal; errors: Counter.Internal; duration: Histogram.Internal<'function'> }>();

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
    const started = performance.now();
    let result: InvokeResult;
    try {
      result = await run();
    } catch (error) {
      if (error instanceof FunctionApiError && error.status === 429) this.throttles.inc({ function: name });
      throw error;
    }
    const series = this.seriesOf(name);
    series.invocations.inc();
    if (result.functionError) series.errors.inc();
    series.duration.observe((performance.now() - started) / 1000);
    return result;
  }

  private seriesOf(name: string): { invocations: Counter.Internal; errors: Counter.Internal; duration: Histogram.Internal<'function'> } {
    let series = this.series.get(name);
    if (!series) {
      const labels = { function: name };
      series = { invocations: this.invocations.labels(labels), errors: this.errors.labels(labels), duration: this.duration.labels(labels) };
      this.series.set(name, series);
    }
    return series;
  }
}
