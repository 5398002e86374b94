import type { Listener, Service, ServiceContext, ServiceHealth } from '../service.js';

/** the S3-compatible object store (issue 5). */
export class ObjectService implements Service {
  readonly name = 'objects';

  constructor(private readonly context: ServiceContext) {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  health(): ServiceHealth {
    return { ok: true };
  }

  listeners(): Listener[] {
    return [];
  }
}
