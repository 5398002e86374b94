import { AdminError, objectBody, type AdminRouter } from '../admin/router.js';
import type { SyncService } from './sync-service.js';

/** `/v1/sync` on the admin API, for `outpost sync status|pause|resume|dlq`. */
export function registerSyncAdminRoutes(router: AdminRouter, service: SyncService): void {
  router.add('GET', '/v1/sync', () => ({ body: service.syncStatus() }));
  router.add('POST', '/v1/sync/pause', async () => ({ body: { paused: await service.setPaused(true) } }));
  router.add('POST', '/v1/sync/resume', async () => ({ body: { paused: await service.setPaused(false) } }));

  router.add('GET', '/v1/sync/dlq', ({ query }) => {
    const limit = Number(query.get('limit') ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new AdminError(400, 'expected "limit" to be 1-10000');
    return { body: { deadLetters: service.deadLetters(limit) } };
  });

  // {"id": N} or {"all": true}
  router.add('POST', '/v1/sync/dlq/retry', async ({ body }) => {
    const request = objectBody(body);
    if (typeof request.id === 'number' && Number.isInteger(request.id)) return { body: await service.retry([request.id]) };
    if (request.all === true) return { body: await service.retry('all') };
    throw new AdminError(400, 'expected {"id": N} or {"all": true}');
  });
}
