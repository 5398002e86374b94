import type { Listener, Service, ServiceContext, ServiceHealth } from '../service.js';

/** serial devices (issue 7). */
export class DeviceService implements Service {
  readonly name = 'devices';

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
