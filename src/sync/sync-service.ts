import type { Listener, Service, ServiceContext, ServiceHealth } from '../service.js';

/** the sync agent (issue 6). */
export class SyncService implements Service {
  readonly name = 'sync';

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
